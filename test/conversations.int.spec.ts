import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { createInboundWorker } from "../src/inbound/processor.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { eventually } from "./support/wait.js";

/**
 * The conversations API over rows seeded directly (threading is the inbound worker's, tested on its own):
 * the list by last activity with cursor paging and filters, one conversation, and its messages merged from
 * both directions, oldest first, with page, page size and total.
 */
const adminToken = "conversations-admin-token-0123456789";

for (const backend of backends()) {
  describe(`conversations API on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1024 * 1024 } });
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    async function tenant(name: string) {
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name },
      });
      expect(created.status).toBe(201);
      return { key: created.body.api_key as string, tenantId: created.body.tenant.id as string };
    }

    const get = (key: string, url: string) => call(h.app, { method: "GET", url, headers: bearer(key) });

    /** A conversation with its activity at `at` (microseconds count: PostgreSQL keeps them). */
    async function conversation(
      tenantId: string,
      channel: "sms" | "email",
      address: string,
      at: string,
      preview = `last from ${address}`,
    ): Promise<string> {
      const [row] = await query<{ id: string }>(
        t.database.db,
        sql`insert into conversations (tenant_id, channel, participant_address, participants, last_activity_at,
            message_count, last_message_preview)
          values (${tenantId}, ${channel}, ${address}, array[${address}, ${channel === "sms" ? "+15550000000" : "support@herald.test"}],
            ${at}::timestamptz, 1, ${preview})
          returning id`,
      );
      return row!.id;
    }

    const bump = (id: string, at: string) =>
      t.database.db.execute(
        sql`update conversations set last_activity_at = ${at}::timestamptz where id = ${id}`,
      );

    /** Every page of a list, following `next_cursor`, with `between` run after each page. */
    async function walk(key: string, url: string, between: (page: number) => Promise<void> = async () => {}) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const separator = url.includes("?") ? "&" : "?";
        const response = await get(key, cursor ? `${url}${separator}cursor=${cursor}` : url);
        expect(response.status).toBe(200);
        seen.push(...response.body.items.map((c: { id: string }) => c.id));
        cursor = response.body.next_cursor;
        if (cursor === null) return seen;
        await between(page);
      }
      throw new Error("the walk did not end");
    }

    it("lists conversations by last activity, newest first, paging without skips or repeats", async () => {
      const a = await tenant("list-order");
      // Times a millisecond apart and a microsecond apart (within one millisecond), and two equal ones.
      const times = [
        "2026-03-01T10:00:00.000000Z",
        "2026-03-01T10:00:00.001000Z",
        "2026-03-01T10:00:00.001001Z",
        "2026-03-01T10:00:00.001002Z",
        "2026-03-01T10:00:05.000000Z",
        "2026-03-01T10:00:05.000000Z",
        "2026-03-02T08:00:00.000000Z",
      ];
      const ids: { id: string; at: string }[] = [];
      for (const [i, at] of times.entries()) {
        ids.push({ id: await conversation(a.tenantId, "sms", `+1415555010${i}`, at), at });
      }
      const expected = ids
        .sort((x, y) => (x.at === y.at ? (x.id < y.id ? 1 : -1) : x.at < y.at ? 1 : -1))
        .map((x) => x.id);

      const first = await get(a.key, "/api/v1/conversations");
      expect(first.status).toBe(200);
      expect(first.body.next_cursor).toBeNull();
      expect(first.body.items.map((c: { id: string }) => c.id)).toEqual(expected);
      expect(first.body.items[0]).toEqual({
        id: expected[0],
        channel: "sms",
        participants: ["+14155550106", "+15550000000"],
        last_activity_at: "2026-03-02T08:00:00.000Z",
        message_count: 1,
        last_message_preview: "last from +14155550106",
      });
      for (const limit of [1, 2, 3]) {
        expect(await walk(a.key, `/api/v1/conversations?limit=${limit}`)).toEqual(expected);
      }
    });

    it("never repeats a conversation bumped during a walk; one bumped before the walk met it starts the next walk", async () => {
      const a = await tenant("list-bumps");
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        ids.push(
          await conversation(a.tenantId, "email", `p${i}@example.com`, `2026-03-01T10:00:0${i}.000000Z`),
        );
      }
      const newestFirst = [...ids].reverse();
      // Page 1 shows p5, p4. Then p5 (shown) and p1 (not yet met) get new messages.
      const seen = await walk(a.key, "/api/v1/conversations?limit=2", async (page) => {
        if (page === 0) {
          await bump(ids[5]!, "2026-03-01T11:00:00.000000Z");
          await bump(ids[1]!, "2026-03-01T11:00:01.000000Z");
        }
      });
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual(newestFirst.filter((id) => id !== ids[1]));
      // A new walk starts with the bumped ones, newest activity first.
      const again = await walk(a.key, "/api/v1/conversations?limit=2");
      expect(again).toEqual([ids[1], ids[5], ids[4], ids[3], ids[2], ids[0]]);
    });

    it("filters by channel and by participant address, normalized", async () => {
      const a = await tenant("list-filters");
      const sms = await conversation(a.tenantId, "sms", "+14155550100", "2026-03-01T10:00:00Z");
      const sms2 = await conversation(a.tenantId, "sms", "+442079460958", "2026-03-01T10:00:01Z");
      const email = await conversation(a.tenantId, "email", "ada@example.com", "2026-03-01T10:00:02Z");
      const ids = async (url: string) => {
        const response = await get(a.key, url);
        expect(response.status).toBe(200);
        return response.body.items.map((c: { id: string }) => c.id);
      };
      expect(await ids("/api/v1/conversations?channel=sms")).toEqual([sms2, sms]);
      expect(await ids("/api/v1/conversations?channel=email")).toEqual([email]);
      expect(
        await ids(`/api/v1/conversations?participant=${encodeURIComponent("+1 (415) 555-0100")}`),
      ).toEqual([sms]);
      expect(
        await ids(`/api/v1/conversations?participant=${encodeURIComponent(" Ada@Example.COM")}`),
      ).toEqual([email]);
      expect(
        await ids(`/api/v1/conversations?channel=sms&participant=${encodeURIComponent("+44 20 7946 0958")}`),
      ).toEqual([sms2]);
      expect(await ids("/api/v1/conversations?participant=%2B14155550111")).toEqual([]);
      // With a channel, the participant must be an address of that channel.
      expectProblem(
        await get(a.key, "/api/v1/conversations?channel=email&participant=%2B14155550100"),
        400,
        "validation_failed",
      );
      expect(await walk(a.key, "/api/v1/conversations?channel=sms&limit=1")).toEqual([sms2, sms]);
      const bad = await get(a.key, "/api/v1/conversations?participant=4155550100");
      expectProblem(bad, 400, "validation_failed");
      expect(bad.body.errors).toEqual([
        { path: "/querystring/participant", message: "is not an E.164 phone number (such as +14155550100)" },
      ]);
      // A cursor belongs to its list: with another filter it is refused.
      const page = await get(a.key, "/api/v1/conversations?channel=sms&limit=1");
      expectProblem(
        await get(a.key, `/api/v1/conversations?channel=email&limit=1&cursor=${page.body.next_cursor}`),
        400,
        "validation_failed",
      );
    });

    it("pages a conversation's inbound and outbound messages oldest first, with their total", async () => {
      const a = await tenant("messages");
      const id = await conversation(a.tenantId, "sms", "+14155550100", "2026-03-01T10:00:05Z");
      const other = await conversation(a.tenantId, "sms", "+14155550199", "2026-03-01T10:00:06Z");
      const inbound = async (conversationId: string, at: string, body: string, reason: string | null) => {
        const [row] = await query<{ id: string }>(
          t.database.db,
          sql`insert into inbound_messages (tenant_id, channel, provider, provider_message_id, from_address,
              to_address, body, conversation_id, received_at, thread_reason)
            values (${a.tenantId}, 'sms', 'twilio', ${`SM-${body}`}, '+14155550100', '+15550000000', ${body},
              ${conversationId}, ${at}::timestamptz, ${reason})
            returning id`,
        );
        return row!.id;
      };
      // An outbound message belongs to its recipient's conversation.
      const outbound = async (to: string, at: string, body: string) => {
        const [row] = await query<{ id: string }>(
          t.database.db,
          sql`insert into outbound_messages (tenant_id, channel, provider, to_address, from_address, body,
              sent_at, thread_reason)
            values (${a.tenantId}, 'sms', 'twilio', ${to}, '+15550000000', ${body}, ${at}::timestamptz, 'outbound')
            returning id`,
        );
        return row!.id;
      };
      // Stored out of order; the page orders them by time.
      const m3 = await inbound(id, "2026-03-01T10:00:03Z", "thanks", "address_pair");
      const m1 = await inbound(id, "2026-03-01T10:00:01Z", "hello", "new");
      const m2 = await outbound("+14155550100", "2026-03-01T10:00:02Z", "hi, how can we help?");
      const m4 = await outbound("+14155550100", "2026-03-01T10:00:04Z", "bye");
      const m5 = await inbound(id, "2026-03-01T10:00:05Z", "STOP", null);
      await inbound(other, "2026-03-01T10:00:00Z", "elsewhere", "new");
      await outbound("+14155550199", "2026-03-01T10:00:00Z", "elsewhere too");
      await query(
        t.database.db,
        sql`insert into outbound_messages (tenant_id, channel, provider, to_address, sent_at)
          values (${a.tenantId}, 'email', 'sendgrid', '+14155550100', '2026-03-01T10:00:00Z')`,
      );

      const page = (n: number, size: number) =>
        get(a.key, `/api/v1/conversations/${id}/messages?page=${n}&page_size=${size}`);
      const all = await get(a.key, `/api/v1/conversations/${id}/messages`);
      expect(all.status).toBe(200);
      expect(all.body).toMatchObject({ page: 1, page_size: 50, total: 5 });
      expect(all.body.items.map((m: { id: string }) => m.id)).toEqual([m1, m2, m3, m4, m5]);
      expect(all.body.items[0]).toEqual({
        id: m1,
        direction: "inbound",
        from: "+14155550100",
        to: "+15550000000",
        body: "hello",
        timestamp: "2026-03-01T10:00:01.000Z",
        thread_reason: "new",
      });
      expect(all.body.items[1]).toEqual({
        id: m2,
        direction: "outbound",
        from: "+15550000000",
        to: "+14155550100",
        body: "hi, how can we help?",
        timestamp: "2026-03-01T10:00:02.000Z",
        thread_reason: "outbound",
      });
      expect(all.body.items[4].thread_reason).toBeNull();

      const pages = [];
      for (const n of [1, 2, 3, 4]) {
        const response = await page(n, 2);
        expect(response.status).toBe(200);
        expect(response.body).toMatchObject({ page: n, page_size: 2, total: 5 });
        pages.push(response.body.items.map((m: { id: string }) => m.id));
      }
      expect(pages).toEqual([[m1, m2], [m3, m4], [m5], []]);

      const empty = await conversation(a.tenantId, "email", "nobody@example.com", "2026-03-01T09:00:00Z");
      expect((await get(a.key, `/api/v1/conversations/${empty}/messages`)).body).toEqual({
        items: [],
        page: 1,
        page_size: 50,
        total: 0,
      });
      const one = await get(a.key, `/api/v1/conversations/${id}`);
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ id, channel: "sms", participants: ["+14155550100", "+15550000000"] });
    });

    it("answers 404 for another tenant's conversation and lists only the tenant's own", async () => {
      const a = await tenant("isolation-a");
      const b = await tenant("isolation-b");
      const id = await conversation(a.tenantId, "sms", "+14155550100", "2026-03-01T10:00:00Z");
      expect((await get(a.key, `/api/v1/conversations/${id}`)).status).toBe(200);
      expectProblem(await get(b.key, `/api/v1/conversations/${id}`), 404, "not_found");
      expectProblem(await get(b.key, `/api/v1/conversations/${id}/messages`), 404, "not_found");
      expectProblem(
        await get(a.key, "/api/v1/conversations/0190f5d2-7a3b-7c4d-8e5f-000000000000/messages"),
        404,
        "not_found",
      );
      expect((await get(b.key, "/api/v1/conversations")).body).toEqual({ items: [], next_cursor: null });
      // A's cursor is sealed to A's list.
      await conversation(a.tenantId, "sms", "+14155550101", "2026-03-01T10:00:01Z");
      const page = await get(a.key, "/api/v1/conversations?limit=1");
      expectProblem(
        await get(b.key, `/api/v1/conversations?limit=1&cursor=${page.body.next_cursor}`),
        400,
        "validation_failed",
      );
      expectProblem(await call(h.app, { method: "GET", url: "/api/v1/conversations" }), 401, "unauthorized");
    });

    it("shows a conversation made through the API: an outbound SMS, then its reply threaded by the worker", async () => {
      const a = await tenant("through-the-api");
      const post = (url: string, payload: object) =>
        call(h.app, { method: "POST", url, headers: bearer(a.key), payload });
      const sent = await post("/api/v1/messages", {
        channel: "sms",
        provider: "twilio",
        from: "+15550000000",
        to: "+1 415 555 0123",
        sent_at: "2026-03-01T10:00:00.000Z",
      });
      expect(sent.status).toBe(201);
      const reply = await post("/api/v1/inbound", {
        channel: "sms",
        provider: "twilio",
        provider_message_id: "SM-reply-1",
        from: "+14155550123",
        to: "+15550000000",
        body: "Sounds good",
        received_at: "2026-03-01T10:05:00.000Z",
      });
      expect(reply.status).toBe(202);
      const worker = createInboundWorker({
        db: t.database.db,
        listen: t.database.listen,
        pollIntervalMs: 20,
      });
      await worker.start();
      await eventually(
        async () =>
          (await count(
            t.database.db,
            "inbound_events",
            `tenant_id = '${a.tenantId}' and status = 'completed'`,
          )) === 1,
        15_000,
        "the reply threaded",
      );
      await worker.stop();

      const list = await get(
        a.key,
        `/api/v1/conversations?participant=${encodeURIComponent("+1 (415) 555-0123")}`,
      );
      expect(list.body.items).toEqual([
        {
          id: expect.any(String),
          channel: "sms",
          participants: ["+14155550123"],
          last_activity_at: "2026-03-01T10:05:00.000Z",
          message_count: 2,
          last_message_preview: "Sounds good",
        },
      ]);
      const messages = await get(a.key, `/api/v1/conversations/${list.body.items[0].id}/messages`);
      expect(messages.body).toEqual({
        items: [
          {
            id: sent.body.id,
            direction: "outbound",
            from: "+15550000000",
            to: "+14155550123",
            body: null,
            timestamp: "2026-03-01T10:00:00.000Z",
            thread_reason: "outbound",
          },
          {
            id: reply.body.id,
            direction: "inbound",
            from: "+14155550123",
            to: "+15550000000",
            body: "Sounds good",
            timestamp: "2026-03-01T10:05:00.000Z",
            thread_reason: "address_pair",
          },
        ],
        page: 1,
        page_size: 50,
        total: 2,
      });
    });

    it("refuses bad input with 400 naming the parameter", async () => {
      const a = await tenant("bad-input");
      const id = await conversation(a.tenantId, "sms", "+14155550100", "2026-03-01T10:00:00Z");
      const cases: [string, string][] = [
        [`/api/v1/conversations/${id}/messages?page=0`, "/querystring/page"],
        [`/api/v1/conversations/${id}/messages?page=-1`, "/querystring/page"],
        [`/api/v1/conversations/${id}/messages?page=x`, "/querystring/page"],
        [`/api/v1/conversations/${id}/messages?page_size=0`, "/querystring/page_size"],
        [`/api/v1/conversations/${id}/messages?page_size=1001`, "/querystring/page_size"],
        [`/api/v1/conversations/${id}/messages?limit=10`, "/querystring/limit"],
        [`/api/v1/conversations/${id}/messages?foo=1`, "/querystring/foo"],
        ["/api/v1/conversations/not-a-uuid/messages", "/params/id"],
        ["/api/v1/conversations/not-a-uuid", "/params/id"],
        ["/api/v1/conversations?limit=0", "/querystring/limit"],
        ["/api/v1/conversations?limit=1001", "/querystring/limit"],
        ["/api/v1/conversations?channel=fax", "/querystring/channel"],
        ["/api/v1/conversations?page=1", "/querystring/page"],
        ["/api/v1/conversations?cursor=abc", "/querystring/cursor"],
      ];
      for (const [url, path] of cases) {
        const response = await get(a.key, url);
        expectProblem(response, 400, "validation_failed");
        const paths = new Set(response.body.errors.map((e: { path: string }) => e.path));
        expect({ url, paths: [...paths] }).toEqual({
          url,
          paths: [path],
        });
      }
      expect((await get(a.key, `/api/v1/conversations/${id}/messages?page_size=1000`)).status).toBe(200);
    });
  });
}
