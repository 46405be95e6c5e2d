import { randomBytes } from "node:crypto";
import { type SQL, sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { createIngestMetrics } from "../src/ingest/metrics.js";
import { createProcessor } from "../src/ingest/processor.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { sampleBatch, sendgridKeys } from "./support/sendgrid.js";
import { eventually } from "./support/wait.js";

const adminToken = "ingest-admin-token-0123456789";

for (const backend of backends()) {
  describe(`SendGrid ingestion on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    const keys = sendgridKeys();

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 5 * 1024 * 1024 } });
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    async function tenantWithSource(name: string, signed = true) {
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name },
      });
      const key = created.body.api_key as string;
      const source = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: {
          provider: "sendgrid",
          ...(signed ? { verification: { public_key: keys.publicKeyBase64 } } : {}),
        },
      });
      return { key, tenantId: created.body.tenant.id as string, url: source.body.url as string };
    }

    const post = (url: string, body: string | Buffer, headers: Record<string, string> = keys.sign(body)) =>
      call(h.app, {
        method: "POST",
        url,
        payload: body,
        headers: { "content-type": "application/json", ...headers },
      });

    /** The archived body of the one delivery matching `where`, as bytes. */
    async function archivedBody(where: SQL): Promise<Buffer> {
      const rows = await query<{ body: Buffer | Uint8Array }>(
        t.database.db,
        sql`select body from webhook_deliveries where ${where}`,
      );
      expect(rows).toHaveLength(1);
      return Buffer.from(rows[0]!.body);
    }

    /** Run the processor until every delivery is processed. */
    async function processAll() {
      const worker = createProcessor({ db: t.database.db, listen: t.database.listen, pollIntervalMs: 50 });
      await worker.start();
      await eventually(
        async () =>
          (await count(t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
        15_000,
        "deliveries processed",
      );
      await worker.stop();
    }

    /** Each stored event of a tenant with the message it is linked to, by provider event id. */
    const linkedEvents = (tenantId: string) =>
      query<{ provider_event_id: string; outbound_message_id: string | null }>(
        t.database.db,
        sql`select provider_event_id, outbound_message_id from message_events
          where tenant_id = ${tenantId} order by provider_event_id`,
      );

    const register = (key: string, payload: object) =>
      call(h.app, { method: "POST", url: "/api/v1/messages", headers: bearer(key), payload });
    const suppress = (key: string, payload: object) =>
      call(h.app, { method: "POST", url: "/api/v1/suppressions", headers: bearer(key), payload });

    it("archives a signed batch, then stores, links, advances and suppresses from it", async () => {
      const a = await tenantWithSource("acme");
      const ada = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "Ada@Example.com",
        dedupe_key: "ada-1",
      });
      const bob = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "bob@example.org",
        provider_message_id: "Lm3kB8pQR1sT5uVw7xYzAa",
      });
      const body = JSON.stringify(sampleBatch({ REPLACE_WITH_MESSAGE_ID_1: ada.body.id }));
      const accepted = await post(a.url, body);
      expect(accepted.status).toBe(200);
      expect(accepted.body).toEqual({ delivery_id: expect.any(Number), events: 11 });
      expect((await archivedBody(sql`id = ${accepted.body.delivery_id}`)).toString()).toBe(body); // the exact bytes

      await processAll();
      const events = await call(h.app, {
        method: "GET",
        url: "/api/v1/message-events?limit=100",
        headers: bearer(a.key),
      });
      expect(events.body.events).toHaveLength(11);
      // Newest first, page by page, every event once.
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await call(h.app, {
          method: "GET",
          url: `/api/v1/message-events?limit=4${cursor ? `&cursor=${cursor}` : ""}`,
          headers: bearer(a.key),
        });
        paged.push(...page.body.events.map((e: { id: string }) => e.id));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(paged).toEqual(events.body.events.map((e: { id: string }) => e.id));
      const adaEvents = await call(h.app, {
        method: "GET",
        url: `/api/v1/messages/${ada.body.id}/events`,
        headers: bearer(a.key),
      });
      // Only the first of Ada's events carries herald_message_id, and her message was registered without a
      // provider message id, so only that one links to it.
      expect(adaEvents.body.events.map((e: { type: string }) => e.type)).toEqual(["processed"]);
      const adaNow = await call(h.app, {
        method: "GET",
        url: `/api/v1/messages/${ada.body.id}`,
        headers: bearer(a.key),
      });
      expect(adaNow.body).toMatchObject({ status: "processed", to: "ada@example.com" });
      const bobNow = await call(h.app, {
        method: "GET",
        url: `/api/v1/messages/${bob.body.id}`,
        headers: bearer(a.key),
      });
      expect(bobNow.body.status).toBe("bounced");
      const bobEvents = await call(h.app, {
        method: "GET",
        url: `/api/v1/messages/${bob.body.id}/events`,
        headers: bearer(a.key),
      });
      expect(bobEvents.body.events.map((e: { type: string }) => e.type)).toEqual([
        "processed",
        "deferred",
        "bounce",
      ]);

      const suppressions = await call(h.app, {
        method: "GET",
        url: "/api/v1/suppressions",
        headers: bearer(a.key),
      });
      const byAddress = Object.fromEntries(
        suppressions.body.suppressions.map(
          (s: { address: string; reason: string; group_id: number | null }) => [
            s.address,
            [s.reason, s.group_id],
          ],
        ),
      );
      expect(byAddress).toEqual({
        "bob@example.org": ["bounce", null],
        "cy@example.net": ["spamreport", null],
        "dee@example.com": ["unsubscribe", null],
        "eve@example.com": ["group_unsubscribe", 42],
      });
      const check = await call(h.app, {
        method: "GET",
        url: "/api/v1/suppressions/check?channel=email&address=BOB@example.org",
        headers: bearer(a.key),
      });
      expect(check.body).toEqual({ suppressed: true, reasons: ["bounce"], group_ids: [] });
      const groupCheck = await call(h.app, {
        method: "GET",
        url: "/api/v1/suppressions/check?channel=email&address=eve@example.com",
        headers: bearer(a.key),
      });
      expect(groupCheck.body).toEqual({ suppressed: true, reasons: ["group_unsubscribe"], group_ids: [42] });
      // An address without a channel is looked up as either.
      const listed = await call(h.app, {
        method: "GET",
        url: "/api/v1/suppressions?address=%20Eve@Example.com",
        headers: bearer(a.key),
      });
      expect(listed.status).toBe(200);
      expect(listed.body.suppressions.map((s: { address: string }) => s.address)).toEqual([
        "eve@example.com",
      ]);
      // Subscribers get message.* events.
      expect(
        await count(t.database.db, "events", `tenant_id = '${a.tenantId}' and event_type like 'message.%'`),
      ).toBe(11);
      const logged = await query<Record<string, unknown>>(
        t.database.db,
        sql`select e.event_type, e.source, e.message_id, e.ts = m.event_at as same_time, e.payload, m.id as event_id,
            m.type, m.outbound_message_id, m.provider_event_id, m.recipient
          from events e join message_events m on m.id = (e.payload->>'message_event_id')::uuid
          where e.tenant_id = ${a.tenantId} and e.event_type like 'message.%'`,
      );
      expect(logged).toHaveLength(11);
      for (const row of logged) {
        expect(row).toMatchObject({
          event_type: `message.${row.type}`,
          source: "webhook",
          message_id: row.outbound_message_id,
          same_time: true,
          payload: expect.objectContaining({
            message_event_id: row.event_id,
            provider: "sendgrid",
            provider_event_id: row.provider_event_id,
            recipient: row.recipient,
          }),
        });
      }
      expect(logged.some((r) => r.message_id === ada.body.id)).toBe(true);
    });

    it("archives every body byte for byte (multibyte text, a leading BOM, a rejected non-UTF-8 body) and stores its events as sent", async () => {
      const a = await tenantWithSource("bytes");
      const multibyte = Buffer.from(
        JSON.stringify([{ event: "open", email: "zoë@example.com", note: "日本語 ✓ 🎉", timestamp: 1 }]),
      );
      const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[{"event":"open"}]')]);
      for (const body of [multibyte, withBom]) {
        const accepted = await post(a.url, body);
        expect(accepted.status).toBe(200);
        expect((await archivedBody(sql`id = ${accepted.body.delivery_id}`)).equals(body)).toBe(true);
      }
      // The stored events keep the archived JSON as it was sent, a number beyond a double's precision included.
      await post(a.url, '[{"event":"open","sg_event_id":"big","timestamp":1,"big":12345678901234567890123}]');
      await processAll();
      const stored = await query<{ payload: Record<string, unknown> | string; big: string | null }>(
        t.database.db,
        sql`select payload, payload->>'big' as big from message_events where tenant_id = ${a.tenantId}
          order by payload->>'email' nulls last, payload->>'sg_event_id' nulls first`,
      );
      const payloads = stored.map((r) => (typeof r.payload === "string" ? JSON.parse(r.payload) : r.payload));
      expect(payloads.slice(0, 2)).toEqual([
        { event: "open", email: "zoë@example.com", note: "日本語 ✓ 🎉", timestamp: 1 },
        { event: "open" },
      ]);
      expect(stored.map((r) => r.big)).toEqual([null, null, "12345678901234567890123"]);
      const invalid = Buffer.from([0x5b, 0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x5d]); // [{"\xff":1}]
      const rejected = await post(a.url, invalid);
      expectProblem(rejected, 400, "invalid_json");
      const archived = await archivedBody(sql`tenant_id = ${a.tenantId} and rejected_reason is not null`);
      expect(archived.equals(invalid)).toBe(true);
    });

    it("links an event of a send to many recipients to its recipient's message only", async () => {
      const a = await tenantWithSource("many-recipients");
      const shared = { channel: "email", provider: "sendgrid", provider_message_id: "MANY1xyz" };
      const ada = await register(a.key, { ...shared, to: "ada@example.com" });
      const bob = await register(a.key, { ...shared, to: "bob@example.com" });
      const event = (email: string, id: string) => ({
        email,
        event: "bounce",
        type: "bounce",
        timestamp: 1763800000,
        sg_event_id: id,
        sg_message_id: "MANY1xyz.filter0001-1",
      });
      const body = JSON.stringify([
        event("ada@example.com", "many-a"),
        event("Bob@Example.com", "many-b"),
        event("carol@example.com", "many-c"),
      ]);
      expect((await post(a.url, body)).status).toBe(200);
      await processAll();
      const linked = await linkedEvents(a.tenantId);
      expect(linked).toEqual([
        { provider_event_id: "many-a", outbound_message_id: ada.body.id },
        { provider_event_id: "many-b", outbound_message_id: bob.body.id },
        // Carol's message is not registered: her bounce must not bounce Ada's or Bob's.
        { provider_event_id: "many-c", outbound_message_id: null },
      ]);
      expect(
        (await call(h.app, { method: "GET", url: `/api/v1/messages/${ada.body.id}`, headers: bearer(a.key) }))
          .body.status,
      ).toBe("bounced");
    });

    it("answers 404 for a deleted source at once, though its source is cached", async () => {
      const a = await tenantWithSource("deleted-source");
      const body = JSON.stringify(sampleBatch().slice(0, 1));
      expect((await post(a.url, body)).status).toBe(200);
      const id = a.url.split("/").pop()!;
      const deleted = await call(h.app, {
        method: "DELETE",
        url: `/api/v1/sources/${id}`,
        headers: bearer(a.key),
      });
      expect(deleted.status).toBe(204);
      expectProblem(await post(a.url, body), 404, "not_found");
      expectProblem(await post(a.url, "not json"), 404, "not_found");
      expect(await count(t.database.db, "webhook_deliveries", `tenant_id = '${a.tenantId}'`)).toBe(1);
    });

    it("stores phone numbers as E.164 and emails bare, and refuses what cannot be either", async () => {
      const a = await tenantWithSource("addresses");
      const sms = await register(a.key, { channel: "sms", provider: "twilio", to: "+1 (415) 555-0100" });
      expect(sms.status).toBe(201);
      expect(sms.body.to).toBe("+14155550100");
      const national = await register(a.key, { channel: "sms", provider: "twilio", to: "(415) 555-0100" });
      expectProblem(national, 400, "validation_failed");
      expect(national.body.errors).toEqual([
        { path: "/body/to", message: "is not an E.164 phone number (such as +14155550100)" },
      ]);
      const batch = await call(h.app, {
        method: "POST",
        url: "/api/v1/messages/batch",
        headers: bearer(a.key),
        payload: {
          messages: [
            { channel: "email", provider: "sendgrid", to: "ada@example.com" },
            { channel: "email", provider: "sendgrid", to: "Ada <ada@example.com>" },
          ],
        },
      });
      expectProblem(batch, 400, "validation_failed");
      expect(batch.body.errors.map((e: { path: string }) => e.path)).toEqual(["/body/messages/1/to"]);
      expect(await count(t.database.db, "outbound_messages", `tenant_id = '${a.tenantId}'`)).toBe(1);
      const manual = await suppress(a.key, { channel: "sms", address: "+44 20 7946 0958", reason: "manual" });
      expect(manual.status).toBe(201);
      expect(manual.body.address).toBe("+442079460958");
      const check = (address: string) =>
        call(h.app, {
          method: "GET",
          url: `/api/v1/suppressions/check?channel=sms&address=${encodeURIComponent(address)}`,
          headers: bearer(a.key),
        });
      expect((await check("+44 (20) 7946-0958")).body.suppressed).toBe(true);
      expectProblem(await check("020 7946 0958"), 400, "validation_failed");
    });

    it("gives the messages of one send, registered together, each their own recipient's waiting events", async () => {
      const a = await tenantWithSource("one-send");
      const shared = { channel: "email", provider: "sendgrid", provider_message_id: "ONESEND1" };
      const event = (email: string, type: string, id: string) => ({
        email,
        event: type,
        ...(type === "bounce" ? { type: "bounce" } : {}),
        timestamp: 1763800000,
        sg_event_id: id,
        sg_message_id: "ONESEND1.filter0001-1",
      });
      // Both recipients' events arrive before their messages are registered.
      await post(
        a.url,
        JSON.stringify([
          event("ada@example.com", "delivered", "one-a"),
          event("bob@example.com", "bounce", "one-b"),
        ]),
      );
      await processAll();
      const batch = await call(h.app, {
        method: "POST",
        url: "/api/v1/messages/batch",
        headers: bearer(a.key),
        payload: {
          messages: [
            { ...shared, to: "ada@example.com" },
            { ...shared, to: "bob@example.com" },
          ],
        },
      });
      expect(batch.status).toBe(201);
      const [ada, bob] = batch.body.messages as { id: string; status: string }[];
      // Ada's message, first in the batch, does not take Bob's bounce: both were stored before either linked.
      expect([ada!.status, bob!.status]).toEqual(["delivered", "bounced"]);
      // A later event goes to its recipient's message too.
      await post(a.url, JSON.stringify([event("bob@example.com", "spamreport", "one-b2")]));
      await processAll();
      const linked = await linkedEvents(a.tenantId);
      expect(linked).toEqual([
        { provider_event_id: "one-a", outbound_message_id: ada!.id },
        { provider_event_id: "one-b", outbound_message_id: bob!.id },
        { provider_event_id: "one-b2", outbound_message_id: bob!.id },
      ]);
    });

    it("counts stored, repeated, linked and unlinked events", async () => {
      const a = await tenantWithSource("counted");
      const registry = new Registry();
      const body = JSON.stringify(sampleBatch());
      expect((await post(a.url, body)).status).toBe(200);
      expect((await post(a.url, body)).status).toBe(200);
      const worker = createProcessor({
        db: t.database.db,
        listen: t.database.listen,
        pollIntervalMs: 50,
        metrics: createIngestMetrics(registry),
      });
      await worker.start();
      await eventually(
        async () =>
          (await count(t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
        15_000,
      );
      await worker.stop();
      const total = async (name: string) =>
        (await registry.getSingleMetric(name)!.get()).values.reduce((sum, v) => sum + v.value, 0);
      expect(await total("herald_message_events_inserted_total")).toBe(11);
      expect(await total("herald_message_events_duplicates_total")).toBe(11);
      expect(
        (await total("herald_message_events_linked_total")) +
          (await total("herald_message_events_unlinked_total")),
      ).toBe(11);
    });

    it("stores each event once under repeated and overlapping deliveries, and applies its effects once", async () => {
      const a = await tenantWithSource("dupes");
      const campaign = await query<{ id: string }>(
        t.database.db,
        sql`insert into contact_campaigns (tenant_id, contact_id, channel, status) values (${a.tenantId}, 'c-bob', 'email', 'active') returning id`,
      );
      await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "bob@example.org",
        provider_message_id: "Lm3kB8pQR1sT5uVw7xYzAa",
        campaign_id: campaign[0]!.id,
        contact_id: "c-bob",
      });
      const batch = sampleBatch();
      const whole = JSON.stringify(batch);
      const firstHalf = JSON.stringify(batch.slice(0, 7));
      const secondHalf = JSON.stringify(batch.slice(4));
      const answers = await Promise.all(
        [whole, whole, whole, firstHalf, secondHalf].map((b) => post(a.url, b)),
      );
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      // Two processors at once, as two workers would.
      const workers = [0, 1].map(() =>
        createProcessor({ db: t.database.db, listen: t.database.listen, pollIntervalMs: 50, chunkSize: 1 }),
      );
      for (const w of workers) await w.start();
      await eventually(
        async () =>
          (await count(t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
        15_000,
      );
      for (const w of workers) await w.stop();

      const tenant = `tenant_id = '${a.tenantId}'`;
      expect(await count(t.database.db, "message_events", tenant)).toBe(11);
      expect(await count(t.database.db, "communication_suppressions", tenant)).toBe(4);
      expect(await count(t.database.db, "events", `${tenant} and event_type like 'message.%'`)).toBe(11);
      expect(await count(t.database.db, "campaign_transitions", tenant)).toBe(1);
      const [c] = await query<{ status: string }>(
        t.database.db,
        sql`select status from contact_campaigns where id = ${campaign[0]!.id}`,
      );
      expect(c!.status).toBe("stopped");
    });

    it("reaches the same final status whatever the order, and a late deferred changes nothing", async () => {
      const finals: string[] = [];
      for (const order of [
        [0, 1, 2, 3],
        [3, 2, 1, 0],
        [2, 0, 3, 1],
      ]) {
        const a = await tenantWithSource(`order-${order.join("")}`);
        const m = await register(a.key, {
          channel: "email",
          provider: "sendgrid",
          to: "ada@example.com",
          provider_message_id: "Xq1pA7nTQ8uR2cWm4vYbZg",
        });
        const ada = sampleBatch().slice(0, 4);
        for (const i of order) {
          await post(a.url, JSON.stringify([ada[i]]));
          await processAll();
        }
        const late = {
          email: "ada@example.com",
          event: "deferred",
          timestamp: 1763800500,
          sg_event_id: "late-deferred",
          sg_message_id: ada[0]!.sg_message_id,
        };
        await post(a.url, JSON.stringify([late]));
        await processAll();
        finals.push(
          (await call(h.app, { method: "GET", url: `/api/v1/messages/${m.body.id}`, headers: bearer(a.key) }))
            .body.status,
        );
      }
      expect(finals).toEqual(["clicked", "clicked", "clicked"]);
    });

    it("ends a group suppression at the later of unsubscribe and resubscribe, whatever the arrival order", async () => {
      const group = (event: string, n: number) => ({
        email: "gus@example.com",
        event,
        asm_group_id: 7,
        timestamp: 1763800000 + n * 100,
        sg_event_id: `group-${event}-${n}`,
        sg_message_id: "Gq1pA7nTQ8uR2cWm4vYbZg.filter0001",
      });
      // Unsubscribe at t1, resubscribe at t2, unsubscribe again at t3: suppressed, by the t3 unsubscribe.
      const events = [
        group("group_unsubscribe", 1),
        group("group_resubscribe", 2),
        group("group_unsubscribe", 3),
      ];
      const orders = [
        [[0], [1], [2]],
        [[0], [2], [1]],
        [[1], [0], [2]],
        [[1], [2], [0]],
        [[2], [0], [1]],
        [[2], [1], [0]],
        [[0, 1, 2]],
        [[2, 1], [0]],
      ];
      const finals = [];
      for (const [run, order] of orders.entries()) {
        const a = await tenantWithSource(`groups-${run}`);
        for (const batch of order) {
          await post(a.url, JSON.stringify(batch.map((i) => events[i])));
          await processAll();
        }
        const rows = await query<{ reason: string; group_id: number; event: string | null }>(
          t.database.db,
          sql`select s.reason, s.group_id, m.provider_event_id as event from communication_suppressions s
            left join message_events m on m.id = s.source_event_id
            where s.tenant_id = ${a.tenantId} and s.address = 'gus@example.com'`,
        );
        finals.push(rows);
      }
      const suppressedByLatest = [
        { reason: "group_unsubscribe", group_id: 7, event: "group-group_unsubscribe-3" },
      ];
      expect(finals).toEqual(orders.map(() => suppressedByLatest));
    });

    it("stores an event without a provider time once, though each delivery gives it another receipt time", async () => {
      const a = await tenantWithSource("untimed");
      const untimed = { email: "una@example.com", event: "open", sg_event_id: "untimed-1" };
      const hashed = { email: "una@example.com", event: "click", url: "https://example.com/x" };
      const timed = {
        email: "una@example.com",
        event: "delivered",
        timestamp: 1763800000,
        sg_event_id: "timed-1",
      };
      for (let i = 0; i < 3; i++) {
        await post(a.url, JSON.stringify([untimed, hashed, timed]));
        await processAll();
        // Receipt times at second precision or finer: make the next delivery's visibly later.
        await new Promise((r) => setTimeout(r, 20));
      }
      const stored = await query<{ key: string; n: number }>(
        t.database.db,
        sql`select coalesce(provider_event_id, type) as key, count(*)::int as n from message_events
          where tenant_id = ${a.tenantId} group by 1 order by 1`,
      );
      expect(stored).toEqual([
        { key: "click", n: 1 },
        { key: "timed-1", n: 1 },
        { key: "untimed-1", n: 1 },
      ]);
      expect(
        await count(t.database.db, "events", `tenant_id = '${a.tenantId}' and event_type like 'message.%'`),
      ).toBe(3);
    });

    it("processes events whose identifiers are too long to index, and the valid events beside them", async () => {
      const a = await tenantWithSource("long-ids");
      // Random CJK text: 2,000 such characters are ~6,000 bytes that do not compress, over a btree entry's limit.
      const cjk = (n: number) =>
        Array.from(
          randomBytes(2 * n)
            .toString("hex")
            .match(/.{4}/g)!,
          (hex) => String.fromCharCode(0x4e00 + (Number.parseInt(hex, 16) % 20000)),
        ).join("");
      const at = 1763800000;
      const longEventId = cjk(2000);
      const body = JSON.stringify([
        { event: "delivered", email: "ok@example.com", sg_event_id: longEventId, timestamp: at },
        {
          event: "bounce",
          type: "bounce",
          email: `${cjk(1000)}@example.com`,
          sg_event_id: "long-rcpt",
          timestamp: at,
        },
        {
          event: "open",
          email: "ok@example.com",
          sg_message_id: `${cjk(2000)}.filter`,
          sg_event_id: "long-msg",
          timestamp: at,
        },
        {
          event: "group_resubscribe",
          email: `${cjk(1000)}@x.io`,
          asm_group_id: 5,
          sg_event_id: "long-resub",
          timestamp: at,
        },
        { event: "delivered", email: "fine@example.com", sg_event_id: "fine-1", timestamp: at },
        // A group id too large for the column is no group.
        {
          event: "group_unsubscribe",
          email: "g@example.com",
          asm_group_id: 1e12,
          sg_event_id: "huge-group",
          timestamp: at,
        },
      ]);
      expect((await post(a.url, body)).status).toBe(200);
      await processAll();
      expect(
        await count(
          t.database.db,
          "webhook_deliveries",
          `tenant_id = '${a.tenantId}' and status = 'completed'`,
        ),
      ).toBe(1);
      const stored = await query<{ provider_event_id: string; recipient: string | null }>(
        t.database.db,
        sql`select provider_event_id, recipient from message_events where tenant_id = ${a.tenantId} order by provider_event_id`,
      );
      expect(stored.map((e) => e.provider_event_id).sort()).toEqual(
        ["fine-1", "huge-group", "long-msg", "long-rcpt", "long-resub", longEventId].sort(),
      );
      // What cannot be an address is no address: nothing to suppress.
      expect(stored.find((e) => e.provider_event_id === "long-rcpt")!.recipient).toBeNull();
      expect(await count(t.database.db, "communication_suppressions", `tenant_id = '${a.tenantId}'`)).toBe(0);
      // Delivered again, the long key is recognized: nothing is stored twice.
      expect((await post(a.url, body)).status).toBe(200);
      await processAll();
      expect(await count(t.database.db, "message_events", `tenant_id = '${a.tenantId}'`)).toBe(6);
    });

    it("marks an archived delivery that no longer passes the door's checks as rejected, and processes the rest", async () => {
      const a = await tenantWithSource("older-archive");
      const accepted = await post(
        a.url,
        JSON.stringify([
          { event: "delivered", email: "ok@example.com", sg_event_id: "older-1", timestamp: 1763800000 },
        ]),
      );
      expect(accepted.status).toBe(200);
      // As an earlier version could have archived it: a number jsonb cannot hold, accepted and queued.
      const [older] = await query<{ id: number }>(
        t.database.db,
        sql`insert into webhook_deliveries (tenant_id, source_id, provider, headers, body, event_count)
          select tenant_id, source_id, provider, headers,
            convert_to('[{"event":"open","sg_event_id":"older-2","n":1e131072}]', 'UTF8'), 1
          from webhook_deliveries where id = ${accepted.body.delivery_id} returning id`,
      );
      await processAll();
      const deliveries = await query<{ id: number; status: string; rejected_reason: string | null }>(
        t.database.db,
        sql`select id::int as id, status, rejected_reason from webhook_deliveries where tenant_id = ${a.tenantId}
          order by id`,
      );
      expect(deliveries).toEqual([
        { id: accepted.body.delivery_id, status: "completed", rejected_reason: null },
        {
          id: Number(older!.id),
          status: "completed",
          rejected_reason:
            "The body holds a number beyond PostgreSQL's numeric range, which cannot be stored",
        },
      ]);
      expect(await count(t.database.db, "message_events", `tenant_id = '${a.tenantId}'`)).toBe(1);
    });

    it("keeps events that arrive before their message and links them when it is registered", async () => {
      const a = await tenantWithSource("orphans");
      await post(a.url, JSON.stringify(sampleBatch().slice(4, 7)));
      await processAll();
      expect(
        await count(
          t.database.db,
          "message_events",
          `tenant_id = '${a.tenantId}' and outbound_message_id is null`,
        ),
      ).toBe(3);
      const bob = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "bob@example.org",
        provider_message_id: "Lm3kB8pQR1sT5uVw7xYzAa",
      });
      expect(bob.status).toBe(201);
      expect(bob.body.status).toBe("bounced");
      const events = await call(h.app, {
        method: "GET",
        url: `/api/v1/messages/${bob.body.id}/events`,
        headers: bearer(a.key),
      });
      expect(events.body.events).toHaveLength(3);
      // Their message.* events in the log, appended before the message existed, now name it too.
      expect(
        await count(t.database.db, "events", `message_id = '${bob.body.id}' and event_type like 'message.%'`),
      ).toBe(3);
      // A campaign of another tenant, or none at all, is refused (not a 500, not a cross-tenant link).
      const b = await tenantWithSource("orphans-b");
      const [theirs] = await query<{ id: string }>(
        t.database.db,
        sql`insert into contact_campaigns (tenant_id, contact_id, channel) values (${b.tenantId}, 'c', 'email') returning id`,
      );
      for (const campaign of [theirs!.id, "01a20000-0000-7000-8000-00000000dead"]) {
        expectProblem(
          await register(a.key, {
            channel: "email",
            provider: "sendgrid",
            to: "z@y.z",
            campaign_id: campaign,
          }),
          400,
          "validation_failed",
        );
      }
      // Registering again with the same dedupe key returns the same message.
      const again = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "x@y.z",
        dedupe_key: "k",
      });
      const repeat = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "x@y.z",
        dedupe_key: "k",
      });
      expect(repeat.status).toBe(200);
      expect(repeat.body.id).toBe(again.body.id);
    });

    it("refuses bad signatures and bodies with the contract's codes, and keeps tenants apart", async () => {
      const a = await tenantWithSource("guarded");
      const b = await tenantWithSource("other");
      const body = JSON.stringify(sampleBatch().slice(0, 1));
      expectProblem(await post(a.url, body, {}), 401, "invalid_signature");
      expectProblem(await post(a.url, body, sendgridKeys().sign(body)), 401, "invalid_signature");
      expectProblem(await post(a.url, `${body} `, keys.sign(body)), 401, "invalid_signature");
      expectProblem(await post(a.url.replace(/[0-9a-f]{4}$/, "0000"), body), 404, "not_found");
      expectProblem(await post("/api/v1/webhooks/sendgrid/not-a-uuid", body), 404, "not_found");
      expectProblem(await post(a.url, "not json"), 400, "invalid_json");
      expectProblem(await post(a.url, '{"event":"open"}'), 400, "validation_failed");
      expectProblem(await post(a.url, "[1,2]"), 400, "validation_failed");
      expectProblem(await post(a.url, Buffer.alloc(6 * 1024 * 1024, 0x20)), 413, "payload_too_large");
      // Rejected-but-verified bodies are archived as rejected; unsigned failures store nothing.
      expect(
        await count(
          t.database.db,
          "webhook_deliveries",
          `tenant_id = '${a.tenantId}' and rejected_reason is not null`,
        ),
      ).toBe(3);
      expect(
        await count(
          t.database.db,
          "webhook_deliveries",
          `tenant_id = '${a.tenantId}' and rejected_reason is null`,
        ),
      ).toBe(0);

      const message = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "ada@example.com",
        provider_message_id: "Xq1pA7nTQ8uR2cWm4vYbZg",
      });
      const suppression = await suppress(a.key, {
        channel: "email",
        address: "kept@example.org",
        reason: "manual",
      });
      expect(suppression.status).toBe(201);
      await post(a.url, body);
      await processAll();
      for (const url of ["/api/v1/message-events", "/api/v1/suppressions", "/api/v1/messages"]) {
        const theirs = await call(h.app, { method: "GET", url, headers: bearer(b.key) });
        expect(Object.values(theirs.body).find(Array.isArray)).toEqual([]);
      }
      // Nor by id: another tenant's message, its events and its suppressions are not there for B.
      const asB = (method: "GET" | "DELETE", url: string) =>
        call(h.app, { method, url, headers: bearer(b.key) });
      expectProblem(await asB("GET", `/api/v1/messages/${message.body.id}`), 404, "not_found");
      expectProblem(await asB("GET", `/api/v1/messages/${message.body.id}/events`), 404, "not_found");
      expectProblem(await asB("DELETE", `/api/v1/suppressions/${suppression.body.id}`), 404, "not_found");
      const check = await call(h.app, {
        method: "GET",
        url: "/api/v1/suppressions/check?channel=email&address=kept@example.org",
        headers: bearer(b.key),
      });
      expect(check.body.suppressed).toBe(false);
      const ours = await call(h.app, {
        method: "GET",
        url: `/api/v1/messages/${message.body.id}/events`,
        headers: bearer(a.key),
      });
      expect(ours.body.events.length).toBeGreaterThan(0);
      expect(
        (
          await call(h.app, {
            method: "GET",
            url: "/api/v1/suppressions/check?channel=email&address=kept@example.org",
            headers: bearer(a.key),
          })
        ).body.suppressed,
      ).toBe(true);
      // Every refusal above was counted by its code, including those made before the handler ran.
      const metrics = String((await call(h.app, { method: "GET", url: "/metrics" })).body);
      for (const reason of [
        "invalid_signature",
        "not_found",
        "invalid_json",
        "validation_failed",
        "payload_too_large",
      ]) {
        expect(metrics).toMatch(
          new RegExp(
            `herald_webhook_deliveries_rejected_total\\{provider="sendgrid",reason="${reason}"\\} [1-9]`,
          ),
        );
      }
    });

    it("reprocesses a source one delivery at a time: one that fails again is reported and the rest go on", async () => {
      const a = await tenantWithSource("reprocessed");
      const sourceId = a.url.split("/").pop()!;
      for (const id of ["rp-1", "poison", "rp-3"]) {
        const event = { ...sampleBatch()[1]!, sg_event_id: id, email: `${id}@example.com` };
        expect((await post(a.url, JSON.stringify([event]))).status).toBe(200);
      }
      const db = t.database.db;
      // A storage failure for one event: a trigger refuses it.
      await db.execute(
        sql.raw(`create function refuse_poison() returns trigger language plpgsql as $$
        begin if new.provider_event_id = 'poison' then raise exception 'poisoned event'; end if; return new; end $$`),
      );
      await db.execute(
        sql.raw(
          "create trigger refuse_poison before insert on message_events for each row execute function refuse_poison()",
        ),
      );
      const seen: number[] = [];
      const first = await reprocess(db, { sourceId }, (done, total) => seen.push(done, total));
      expect(first.deliveries).toBe(3);
      expect(first.stored).toBe(2);
      expect(first.failed).toHaveLength(1);
      expect(first.failed[0]!.error).toMatch(/poisoned event/);
      // The database's words, not Drizzle's wrapper repeating the statement and its parameters.
      expect(first.failed[0]!.error).not.toMatch(/Failed query|params/);
      expect(seen).toEqual([1, 3, 2, 3, 3, 3]);
      await db.execute(sql.raw("drop trigger refuse_poison on message_events"));
      await db.execute(sql.raw("drop function refuse_poison()"));
      // Run again once fixed: only what was missing is stored, and nothing fails.
      expect(await reprocess(db, { sourceId })).toEqual({ deliveries: 3, stored: 1, failed: [] });
      expect(
        await count(db, "webhook_deliveries", `tenant_id = '${a.tenantId}' and status <> 'completed'`),
      ).toBe(0);
      // A source id that is not one is refused, not a query error.
      await expect(reprocess(db, { sourceId: "abc" })).rejects.toMatchObject({ code: "validation_failed" });
      await expect(reprocess(db, { sourceId: "01a20000-0000-7000-8000-000000000000" })).rejects.toMatchObject(
        {
          code: "not_found",
        },
      );
    });
  });
}
