import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { createProcessor } from "../src/ingest/processor.js";
import { backends, createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { bearer, call } from "./support/http.js";
import { eventually } from "./support/wait.js";

const adminToken = "linking-admin-token-0123456789";

/**
 * Linking provider events to registered messages by provider message id (API.md): a registered id P links an
 * event whose `sg_message_id` equals P or starts with P followed by "." — legacy X-Message-Ids with dots of
 * their own included — the longest registered P winning, in either order of arrival (issue 13, item 7).
 */
for (const backend of backends()) {
  describe(`linking by provider message id on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    let key: string;
    let tenantId: string;
    let sourceUrl: string;
    let n = 0;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "linkers" },
      });
      key = created.body.api_key;
      tenantId = created.body.tenant.id;
      const source = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "sendgrid" },
      });
      sourceUrl = source.body.url;
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    async function register(providerMessageId: string, to = "ada@example.com") {
      const response = await call(h.app, {
        method: "POST",
        url: "/api/v1/messages",
        headers: bearer(key),
        payload: { channel: "email", provider: "sendgrid", to, provider_message_id: providerMessageId },
      });
      expect(response.status).toBe(201);
      return response.body.id as string;
    }

    /** Deliver one `delivered` event per message id (to `to`) and process it; returns the events' ids. */
    async function deliver(sgMessageIds: string[], to = "ada@example.com"): Promise<string[]> {
      const ids = sgMessageIds.map(() => `sg-${n++}`);
      const response = await call(h.app, {
        method: "POST",
        url: sourceUrl,
        headers: { "content-type": "application/json" },
        payload: JSON.stringify(
          sgMessageIds.map((sg, i) => ({
            event: "delivered",
            email: to,
            timestamp: Math.floor(Date.now() / 1000),
            sg_event_id: ids[i],
            sg_message_id: sg,
          })),
        ),
      });
      expect(response.status).toBe(200);
      const worker = createProcessor({ db: t.database.db, listen: t.database.listen, pollIntervalMs: 20 });
      await worker.start();
      try {
        await eventually(
          async () =>
            (await count(t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
          15_000,
          "deliveries processed",
        );
      } finally {
        await worker.stop();
      }
      return ids;
    }

    /** The message each event (by provider event id) is linked to, in the order asked. */
    async function linkedTo(eventIds: string[]): Promise<(string | null)[]> {
      const rows = await query<{ provider_event_id: string; outbound_message_id: string | null }>(
        t.database.db,
        sql`select provider_event_id, outbound_message_id from message_events where tenant_id = ${tenantId}`,
      );
      const by = new Map(rows.map((r) => [r.provider_event_id, r.outbound_message_id]));
      return eventIds.map((id) => {
        expect(by.has(id)).toBe(true);
        return by.get(id) ?? null;
      });
    }

    /** The message's events in the log (`message.*`), which must name it once it is linked. */
    const logEventsOf = (messageId: string) =>
      count(t.database.db, "events", `tenant_id = '${tenantId}' and message_id = '${messageId}'`);

    const status = async (messageId: string) =>
      (await call(h.app, { method: "GET", url: `/api/v1/messages/${messageId}`, headers: bearer(key) })).body
        .status;

    it("links a legacy dotted X-Message-Id registered before its events", async () => {
      const message = await register("14c5d75ce93.dfd.64b469");
      const events = await deliver(["14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"]);
      expect(await linkedTo(events)).toEqual([message]);
      expect(await status(message)).toBe("delivered");
      // Its message.delivered event in the log names it too.
      expect(await logEventsOf(message)).toBe(1);
    });

    it("links a legacy dotted X-Message-Id registered after its events", async () => {
      const events = await deliver(["14c5d75ce94.dfd.64b470.filter0001.16648.5515E0B89.0"]);
      expect(await linkedTo(events)).toEqual([null]);
      const message = await register("14c5d75ce94.dfd.64b470");
      expect(await linkedTo(events)).toEqual([message]);
      expect(await status(message)).toBe("delivered");
      expect(await logEventsOf(message)).toBe(1);
    });

    it("still links an X-Message-Id without dots, and one equal to the registered id, in both orders", async () => {
      const first = await register("Lm3kB8pQR1sT5uVw7xYzAa");
      const firstEvents = await deliver([
        "Lm3kB8pQR1sT5uVw7xYzAa.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC1BC-B.0",
        "Lm3kB8pQR1sT5uVw7xYzAa",
      ]);
      expect(await linkedTo(firstEvents)).toEqual([first, first]);
      const laterEvents = await deliver([
        "Zq9xW8vU7tS6rQ5pO4nM3l.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC1BC-B.0",
        "Zq9xW8vU7tS6rQ5pO4nM3l",
      ]);
      const later = await register("Zq9xW8vU7tS6rQ5pO4nM3l");
      expect(await linkedTo(laterEvents)).toEqual([later, later]);
    });

    it("does not link an id that only shares the registered id's text, without the dot", async () => {
      const abc = await register("abc");
      const before = await deliver(["abcd.x", "abc-1.x", "ab.c"]);
      expect(await linkedTo(before)).toEqual([null, null, null]);
      const orphans = await deliver(["xyzw.x", "xyz_.x"]);
      await register("xyz");
      expect(await linkedTo(orphans)).toEqual([null, null]);
      expect(await status(abc)).toBe("sent");
    });

    it("prefers the longest registered id that links an event, in both orders", async () => {
      const short = await register("p1");
      const long = await register("p1.q");
      const events = await deliver(["p1.q.r.0", "p1.x.0", "p1.q", "p1.qq.0"]);
      expect(await linkedTo(events)).toEqual([long, short, long, short]);

      const orphans = await deliver(["p2.q.r.0", "p2.x.0", "p2.q", "p2.qq.0"]);
      const long2 = await register("p2.q");
      expect(await linkedTo(orphans)).toEqual([long2, null, long2, null]);
      const short2 = await register("p2");
      expect(await linkedTo(orphans)).toEqual([long2, short2, long2, short2]);
    });

    it("keeps the recipient rule for messages sharing a legacy dotted id", async () => {
      const batch = await call(h.app, {
        method: "POST",
        url: "/api/v1/messages/batch",
        headers: bearer(key),
        payload: {
          messages: ["bo@example.com", "cy@example.com"].map((to) => ({
            channel: "email",
            provider: "sendgrid",
            to,
            provider_message_id: "14c5d75ce95.dfd.64b471",
          })),
        },
      });
      expect(batch.status).toBe(201);
      const [bo, cy] = batch.body.messages.map((m: { id: string }) => m.id);
      const boEvents = await deliver(["14c5d75ce95.dfd.64b471.filter0001.16648.1.0"], "bo@example.com");
      const cyEvents = await deliver(["14c5d75ce95.dfd.64b471.filter0001.16648.2.0"], "cy@example.com");
      const strangerEvents = await deliver(
        ["14c5d75ce95.dfd.64b471.filter0001.16648.3.0"],
        "dee@example.com",
      );
      expect(await linkedTo([...boEvents, ...cyEvents, ...strangerEvents])).toEqual([bo, cy, null]);

      // The same for waiting events, registered later in one batch.
      const waiting = [
        ...(await deliver(["14c5d75ce96.dfd.64b472.filter0001.16648.1.0"], "bo@example.com")),
        ...(await deliver(["14c5d75ce96.dfd.64b472.filter0001.16648.2.0"], "cy@example.com")),
      ];
      const later = await call(h.app, {
        method: "POST",
        url: "/api/v1/messages/batch",
        headers: bearer(key),
        payload: {
          messages: ["bo@example.com", "cy@example.com"].map((to) => ({
            channel: "email",
            provider: "sendgrid",
            to,
            provider_message_id: "14c5d75ce96.dfd.64b472",
          })),
        },
      });
      expect(await linkedTo(waiting)).toEqual(later.body.messages.map((m: { id: string }) => m.id));
    });
  });
}

/** The two lookups that link are index lookups, on tables of some size. */
describe.skipIf(!hasPostgres())("linking's plans on postgres", () => {
  let t: TestDatabase;
  let tenantId: string;
  beforeAll(async () => {
    t = await createTestDatabase("postgres");
    const db = t.database.db;
    tenantId = await makeTenant(db);
    await query(
      db,
      sql`insert into outbound_messages (tenant_id, channel, provider, to_address, provider_message_id)
        select ${tenantId}, 'email', 'sendgrid', 'r' || g || '@example.com', 'm' || g || '.dfd.' || g
        from generate_series(1, 20000) g`,
    );
    await query(
      db,
      sql`insert into message_events (tenant_id, provider, provider_message_id, dedupe_key, type, event_at, payload)
        select ${tenantId}, 'sendgrid', 'o' || g || '.dfd.' || g || '.filter0001.1.0', 'k' || g, 'delivered', now(), '{}'
        from generate_series(1, 20000) g`,
    );
    await query(db, sql`analyze outbound_messages`);
    await query(db, sql`analyze message_events`);
  }, 60_000);
  afterAll(() => t?.drop());

  const plan = async (statement: ReturnType<typeof sql>) =>
    (await query<{ "QUERY PLAN": string }>(t.database.db, sql`explain ${statement}`))
      .map((r) => r["QUERY PLAN"])
      .join("\n");

  it("finds waiting events through the unlinked index on their id's root", async () => {
    const text = await plan(
      sql`select id, event_at::text, provider_message_id from message_events
        where tenant_id = ${tenantId} and outbound_message_id is null and provider = 'sendgrid'
          and split_part(provider_message_id, '.', 1) = ${"o7"}
          and (provider_message_id = ${"o7.dfd.7"} or starts_with(provider_message_id, ${"o7.dfd.7."}))`,
    );
    // This month's partition holds the rows (the empty ones are scanned for nothing, which costs nothing).
    const now = new Date();
    const month = `${now.getUTCFullYear()}_${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
    expect(text).toContain(`Index Scan using message_events_${month}_tenant_id_split_part_idx`);
    expect(text).not.toContain(`Seq Scan on message_events_${month}`);
  });

  it("finds an event's messages by its candidate ids through the provider id index", async () => {
    const text = await plan(
      sql`select m.id from outbound_messages m
        where m.tenant_id = ${tenantId} and m.provider = 'sendgrid'
          and m.provider_message_id = any(array(
            select left(${"m7.dfd.7.filter0001.1.0"}::text, n) from unnest(${"{23,19,8,6,2}"}::int[]) as n))`,
    );
    expect(text).toMatch(/Index (Only )?Scan using outbound_messages_provider_id_idx/);
    expect(text).not.toMatch(/Seq Scan/);
  });
});
