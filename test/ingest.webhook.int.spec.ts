import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { payloadSql } from "../src/events/columns.js";
import { createIngestMetrics } from "../src/ingest/metrics.js";
import { createProcessor } from "../src/ingest/processor.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { backends } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";
import { sampleBatch, sendgridKeys } from "./support/sendgrid.js";
import { eventually } from "./support/wait.js";

/**
 * The webhook door and the processor: archiving, signatures, storing each event once, counting, reprocessing.
 */
for (const backend of backends()) {
  describe(`SendGrid webhook ingestion on ${backend}`, () => {
    const k = ingestHarness(backend);
    const { keys, tenantWithSource, post, archivedBody, processAll, register, suppress } = k;

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
      const events = await call(k.h.app, {
        method: "GET",
        url: "/api/v1/message-events?limit=100",
        headers: bearer(a.key),
      });
      expect(events.body.events).toHaveLength(11);
      // Newest first, page by page, every event once.
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await call(k.h.app, {
          method: "GET",
          url: `/api/v1/message-events?limit=4${cursor ? `&cursor=${cursor}` : ""}`,
          headers: bearer(a.key),
        });
        paged.push(...page.body.events.map((e: { id: string }) => e.id));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(paged).toEqual(events.body.events.map((e: { id: string }) => e.id));
      const adaEvents = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${ada.body.id}/events`,
        headers: bearer(a.key),
      });
      // Only the first of Ada's events carries herald_message_id, and her message was registered without a
      // provider message id, so only that one links to it.
      expect(adaEvents.body.events.map((e: { type: string }) => e.type)).toEqual(["processed"]);
      const adaNow = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${ada.body.id}`,
        headers: bearer(a.key),
      });
      expect(adaNow.body).toMatchObject({ status: "processed", to: "ada@example.com" });
      const bobNow = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${bob.body.id}`,
        headers: bearer(a.key),
      });
      expect(bobNow.body.status).toBe("bounced");
      const bobEvents = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${bob.body.id}/events`,
        headers: bearer(a.key),
      });
      expect(bobEvents.body.events.map((e: { type: string }) => e.type)).toEqual([
        "processed",
        "deferred",
        "bounce",
      ]);

      const suppressions = await call(k.h.app, {
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
      const check = await call(k.h.app, {
        method: "GET",
        url: "/api/v1/suppressions/check?channel=email&address=BOB@example.org",
        headers: bearer(a.key),
      });
      expect(check.body).toEqual({ suppressed: true, reasons: ["bounce"], group_ids: [] });
      const groupCheck = await call(k.h.app, {
        method: "GET",
        url: "/api/v1/suppressions/check?channel=email&address=eve@example.com",
        headers: bearer(a.key),
      });
      expect(groupCheck.body).toEqual({ suppressed: true, reasons: ["group_unsubscribe"], group_ids: [42] });
      // An address without a channel is looked up as either.
      const listed = await call(k.h.app, {
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
        await count(k.t.database.db, "events", `tenant_id = '${a.tenantId}' and event_type like 'message.%'`),
      ).toBe(11);
      const logged = await query<Record<string, unknown>>(
        k.t.database.db,
        sql`select e.event_type, e.source, e.message_id, e.ts = m.event_at as same_time,
            ${sql.raw(payloadSql("e"))} as payload, e.payload is null as no_copy, m.id as event_id,
            m.type, m.outbound_message_id, m.provider_event_id, m.recipient
          from events e join message_events m on m.id = e.id
          where e.tenant_id = ${a.tenantId} and e.event_type like 'message.%'`,
      );
      expect(logged).toHaveLength(11);
      for (const row of logged) {
        expect(row).toMatchObject({
          event_type: `message.${row.type}`,
          source: "webhook",
          message_id: row.outbound_message_id,
          same_time: true,
          no_copy: true,
          payload: expect.objectContaining({
            message_event_id: row.event_id,
            provider: "sendgrid",
            provider_event_id: row.provider_event_id,
            recipient: row.recipient,
          }),
        });
      }
      expect(logged.some((r) => r.message_id === ada.body.id)).toBe(true);
      // The log's readers show each one's payload: its list, an event by id, and an export.
      const byId = new Map(logged.map((r) => [r.event_id as string, r.payload]));
      const page = await call(k.h.app, {
        method: "GET",
        url: "/api/v1/events?type=message.*&limit=100",
        headers: bearer(a.key),
      });
      expect(page.body.total).toBe(11);
      for (const e of page.body.events) expect(e.payload).toEqual(byId.get(e.id));
      const one = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/events/${logged[0]!.event_id}`,
        headers: bearer(a.key),
      });
      expect(one.body.payload).toEqual(logged[0]!.payload);
      const exported = await k.h.app.inject({
        method: "GET",
        url: "/api/v1/events/export?type=message.*&format=ndjson",
        headers: bearer(a.key),
      });
      const lines = exported.body
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(11);
      for (const e of lines) expect(e.payload).toEqual(byId.get(e.id));
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
      // The stored events are each event's bytes as sent — spacing, key order, a number beyond a double's
      // precision — and the API serves them byte for byte, keeping no second copy of them.
      const first = '{ "timestamp":3,"event":"open" , "sg_event_id":"big",\n "big":12345678901234567890123 }';
      const second =
        '{"url":"https://example.com/é?a=1&b=[2]","event":"click","sg_event_id":"k2","timestamp":4}';
      await post(a.url, ` [${first},\r\n\t${second} ]\n`);
      await processAll();
      const listed = await k.h.app.inject({
        method: "GET",
        url: "/api/v1/message-events?limit=10",
        headers: bearer(a.key),
      });
      expect(listed.statusCode).toBe(200);
      for (const raw of [
        first,
        second,
        JSON.stringify(JSON.parse(multibyte.toString())[0]),
        '{"event":"open"}',
      ])
        expect(listed.body).toContain(`"payload":${raw}`);
      expect(JSON.parse(listed.body).events).toHaveLength(4);
      const copies = await query<{ n: number }>(
        k.t.database.db,
        sql`select count(*)::int as n from message_events where tenant_id = ${a.tenantId} and payload is not null`,
      );
      expect(copies[0]!.n).toBe(0);
      // A row stored before migration 0030 kept a JSON copy, and is served from it.
      await query(
        k.t.database.db,
        sql`update message_events set payload = '{"event":"click","kept":[1]}', raw_offset = null, raw_length = null
          where tenant_id = ${a.tenantId} and provider_event_id = 'k2'`,
      );
      const again = await call(k.h.app, {
        method: "GET",
        url: "/api/v1/message-events?type=click",
        headers: bearer(a.key),
      });
      expect(again.body.events.map((e: { payload: unknown }) => e.payload)).toEqual([
        { event: "click", kept: [1] },
      ]);
      const invalid = Buffer.from([0x5b, 0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x5d]); // [{"\xff":1}]
      const rejected = await post(a.url, invalid);
      expectProblem(rejected, 400, "invalid_json");
      const archived = await archivedBody(sql`tenant_id = ${a.tenantId} and rejected_reason is not null`);
      expect(archived.equals(invalid)).toBe(true);
    });

    it("answers 404 for a deleted source at once, though its source is cached", async () => {
      const a = await tenantWithSource("deleted-source");
      const body = JSON.stringify(sampleBatch().slice(0, 1));
      expect((await post(a.url, body)).status).toBe(200);
      const id = a.url.split("/").pop()!;
      const deleted = await call(k.h.app, {
        method: "DELETE",
        url: `/api/v1/sources/${id}`,
        headers: bearer(a.key),
      });
      expect(deleted.status).toBe(204);
      expectProblem(await post(a.url, body), 404, "not_found");
      expectProblem(await post(a.url, "not json"), 404, "not_found");
      expect(await count(k.t.database.db, "webhook_deliveries", `tenant_id = '${a.tenantId}'`)).toBe(1);
    });

    it("counts stored, repeated, linked and unlinked events", async () => {
      const a = await tenantWithSource("counted");
      await processAll(); // what earlier tests left pending is not this test's to count
      const registry = new Registry();
      const body = JSON.stringify(sampleBatch());
      expect((await post(a.url, body)).status).toBe(200);
      expect((await post(a.url, body)).status).toBe(200);
      const worker = createProcessor({
        db: k.t.database.db,
        listen: k.t.database.listen,
        pollIntervalMs: 50,
        metrics: createIngestMetrics(registry),
      });
      await worker.start();
      await eventually(
        async () =>
          (await count(k.t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
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

    it("processes small deliveries several to a transaction, up to the chunk's events, a large one alone", async () => {
      const a = await tenantWithSource("chunks");
      const batch = sampleBatch();
      // Seven deliveries of one event each, then one of the whole batch (more events than a chunk holds).
      const bodies = [...batch.slice(0, 7).map((e) => JSON.stringify([e])), JSON.stringify(batch)];
      for (const body of bodies) expect((await post(a.url, body)).status).toBe(200);
      const processor = createProcessor({
        db: k.t.database.db,
        listen: k.t.database.listen,
        pollIntervalMs: 50,
        batchSize: 8,
        chunkEvents: 3,
      });
      const chunks: number[][] = [];
      processor.on("job:completed", (rows) => chunks.push(rows.map((r) => Number(r.event_count))));
      await processor.start();
      await eventually(
        async () =>
          (await count(k.t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
        15_000,
      );
      await processor.stop();
      expect(chunks.flat().sort((x, y) => x - y)).toEqual([1, 1, 1, 1, 1, 1, 1, batch.length]);
      for (const chunk of chunks) {
        const events = chunk.reduce((sum, n) => sum + n, 0);
        expect(chunk.length === 1 || events <= 3, `chunk ${chunk}`).toBe(true);
      }
      expect(chunks.some((chunk) => chunk.length > 1)).toBe(true);
    });

    it("stores each event once under repeated and overlapping deliveries, and applies its effects once", async () => {
      const a = await tenantWithSource("dupes");
      const campaign = await query<{ id: string }>(
        k.t.database.db,
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
        createProcessor({
          db: k.t.database.db,
          listen: k.t.database.listen,
          pollIntervalMs: 50,
          chunkEvents: 1,
        }),
      );
      for (const w of workers) await w.start();
      await eventually(
        async () =>
          (await count(k.t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
        15_000,
      );
      for (const w of workers) await w.stop();

      const tenant = `tenant_id = '${a.tenantId}'`;
      expect(await count(k.t.database.db, "message_events", tenant)).toBe(11);
      expect(await count(k.t.database.db, "communication_suppressions", tenant)).toBe(4);
      expect(await count(k.t.database.db, "events", `${tenant} and event_type like 'message.%'`)).toBe(11);
      expect(await count(k.t.database.db, "campaign_transitions", tenant)).toBe(1);
      const [c] = await query<{ status: string }>(
        k.t.database.db,
        sql`select status from contact_campaigns where id = ${campaign[0]!.id}`,
      );
      expect(c!.status).toBe("stopped");
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
        // The next delivery must get a later receipt time: wait until the database's clock has passed this one's.
        await eventually(async () => {
          const [row] = await query<{ later: boolean }>(
            k.t.database.db,
            sql`select clock_timestamp() > max(received_at) + interval '1 millisecond' as later
              from webhook_deliveries where tenant_id = ${a.tenantId}`,
          );
          return row?.later === true;
        });
      }
      const stored = await query<{ key: string; n: number }>(
        k.t.database.db,
        sql`select coalesce(provider_event_id, type) as key, count(*)::int as n from message_events
          where tenant_id = ${a.tenantId} group by 1 order by 1`,
      );
      expect(stored).toEqual([
        { key: "click", n: 1 },
        { key: "timed-1", n: 1 },
        { key: "untimed-1", n: 1 },
      ]);
      expect(
        await count(k.t.database.db, "events", `tenant_id = '${a.tenantId}' and event_type like 'message.%'`),
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
          k.t.database.db,
          "webhook_deliveries",
          `tenant_id = '${a.tenantId}' and status = 'completed'`,
        ),
      ).toBe(1);
      const stored = await query<{ provider_event_id: string; recipient: string | null }>(
        k.t.database.db,
        sql`select provider_event_id, recipient from message_events where tenant_id = ${a.tenantId} order by provider_event_id`,
      );
      expect(stored.map((e) => e.provider_event_id).sort()).toEqual(
        ["fine-1", "huge-group", "long-msg", "long-rcpt", "long-resub", longEventId].sort(),
      );
      // What cannot be an address is no address: nothing to suppress.
      expect(stored.find((e) => e.provider_event_id === "long-rcpt")!.recipient).toBeNull();
      expect(await count(k.t.database.db, "communication_suppressions", `tenant_id = '${a.tenantId}'`)).toBe(
        0,
      );
      // Delivered again, the long key is recognized: nothing is stored twice.
      expect((await post(a.url, body)).status).toBe(200);
      await processAll();
      expect(await count(k.t.database.db, "message_events", `tenant_id = '${a.tenantId}'`)).toBe(6);
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
        k.t.database.db,
        sql`insert into webhook_deliveries (tenant_id, source_id, provider, headers, body, event_count)
          select tenant_id, source_id, provider, headers,
            convert_to('[{"event":"open","sg_event_id":"older-2","n":1e131072}]', 'UTF8'), 1
          from webhook_deliveries where id = ${accepted.body.delivery_id} returning id`,
      );
      await processAll();
      const deliveries = await query<{ id: number; status: string; rejected_reason: string | null }>(
        k.t.database.db,
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
      expect(await count(k.t.database.db, "message_events", `tenant_id = '${a.tenantId}'`)).toBe(1);
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
          k.t.database.db,
          "webhook_deliveries",
          `tenant_id = '${a.tenantId}' and rejected_reason is not null`,
        ),
      ).toBe(3);
      expect(
        await count(
          k.t.database.db,
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
        const theirs = await call(k.h.app, { method: "GET", url, headers: bearer(b.key) });
        expect(Object.values(theirs.body).find(Array.isArray)).toEqual([]);
      }
      // Nor by id: another tenant's message, its events and its suppressions are not there for B.
      const asB = (method: "GET" | "DELETE", url: string) =>
        call(k.h.app, { method, url, headers: bearer(b.key) });
      expectProblem(await asB("GET", `/api/v1/messages/${message.body.id}`), 404, "not_found");
      expectProblem(await asB("GET", `/api/v1/messages/${message.body.id}/events`), 404, "not_found");
      expectProblem(await asB("DELETE", `/api/v1/suppressions/${suppression.body.id}`), 404, "not_found");
      const check = await call(k.h.app, {
        method: "GET",
        url: "/api/v1/suppressions/check?channel=email&address=kept@example.org",
        headers: bearer(b.key),
      });
      expect(check.body.suppressed).toBe(false);
      const ours = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${message.body.id}/events`,
        headers: bearer(a.key),
      });
      expect(ours.body.events.length).toBeGreaterThan(0);
      expect(
        (
          await call(k.h.app, {
            method: "GET",
            url: "/api/v1/suppressions/check?channel=email&address=kept@example.org",
            headers: bearer(a.key),
          })
        ).body.suppressed,
      ).toBe(true);
      // Every refusal above was counted by its code, including those made before the handler ran.
      const metrics = String((await call(k.h.app, { method: "GET", url: "/metrics" })).body);
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
      const db = k.t.database.db;
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
