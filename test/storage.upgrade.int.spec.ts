import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { migrate, migrateDown, readMigrations } from "../src/db/migrate.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call } from "./support/http.js";
import { processAllDeliveries } from "./support/ingestHarness.js";
import { sendgridKeys } from "./support/sendgrid.js";

const adminToken = "storage-upgrade-admin-token-0123456789";

/**
 * Issue 19's upgrade path: rows as a Herald before migrations 0030–0033 stored them — a message event with a
 * copy of its provider JSON, its log event with a payload of its own, its dedupe key as text, a delivered
 * outbox row — are migrated, then read, reprocessed and repeated by this Herald, which finds them all.
 */
for (const backend of backends()) {
  describe(`rows stored before lean storage, on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    const keys = sendgridKeys();
    let key: string;
    let tenantId: string;
    let sourceId: string;
    let sourceUrl: string;
    // The provider's events, as SendGrid posted them in the old delivery.
    const events = [
      {
        email: "ada@example.com",
        event: "delivered",
        sg_event_id: "old-1",
        sg_message_id: "M1.f",
        timestamp: 1,
      },
      { email: "bob@example.com", event: "open", sg_event_id: "old-2", sg_message_id: "M2.f", timestamp: 2 },
    ];
    const body = JSON.stringify(events);

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "upgrade" },
      });
      key = created.body.api_key;
      tenantId = created.body.tenant.id;
      const source = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "sendgrid", verification: { public_key: keys.publicKeyBase64 } },
      });
      sourceId = source.body.id;
      sourceUrl = source.body.url;
      const subscription = await call(h.app, {
        method: "POST",
        url: "/api/v1/subscriptions",
        headers: bearer(key),
        payload: { name: "old", event_types: ["message.*"], sink: { type: "nats", subject: "old.events" } },
      });
      expect(subscription.status).toBe(201);
      const db = t.database.db;

      // Back to the schema before lean storage, and the rows that Herald wrote there.
      const tags = readMigrations().map((m) => m.tag);
      await migrateDown(db, tags.length - tags.indexOf("0030_lean_storage"));
      const [delivery] = await query<{ id: number }>(
        db,
        sql`insert into webhook_deliveries (tenant_id, source_id, provider, headers, body, status, event_count, processed_at)
          values (${tenantId}, ${sourceId}, 'sendgrid', '{}', convert_to(${body}, 'UTF8'), 'completed', 2, now())
          returning id`,
      );
      for (const [at, e] of events.entries()) {
        const id = `0190a000-0000-7000-8000-00000000000${at}`;
        const logId = `0190a000-0000-7000-8000-00000000001${at}`;
        const eventAt = new Date(Date.UTC(2026, 11, 1, 12, at)).toISOString();
        await query(
          db,
          sql`insert into message_events (id, tenant_id, delivery_id, provider, provider_event_id, provider_message_id,
              dedupe_key, type, event_at, recipient, payload, log_event_id)
            values (${id}, ${tenantId}, ${delivery!.id}, 'sendgrid', ${e.sg_event_id}, ${e.sg_message_id},
              ${e.sg_event_id}, ${e.event}, ${eventAt}, ${e.email}, ${JSON.stringify(e)}::jsonb, ${logId})`,
        );
        await query(
          db,
          sql`insert into message_event_keys (tenant_id, provider, dedupe_key, message_event_id, event_at)
            values (${tenantId}, 'sendgrid', ${e.sg_event_id}, ${id}, ${eventAt})`,
        );
        await query(
          db,
          sql`insert into events (id, tenant_id, event_type, source, payload, ts)
            values (${logId}, ${tenantId}, ${`message.${e.event}`}, 'webhook',
              jsonb_build_object('message_event_id', ${id}::uuid, 'provider', 'sendgrid',
                'provider_event_id', ${e.sg_event_id}::text, 'provider_message_id', ${e.sg_message_id}::text,
                'recipient', ${e.email}::text, 'url', null, 'reason', null, 'group_id', null), ${eventAt})`,
        );
        await query(
          db,
          sql`insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type, status, attempts,
              delivered_at, created_at, updated_at)
            values (${tenantId}, ${subscription.body.id}, ${logId}, ${eventAt}, ${`message.${e.event}`}, 'completed',
              ${at + 1}, now(), now() - interval '2 seconds', now())`,
        );
      }
      await migrate(db);
    });

    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    it("serves the old rows as before: each event's JSON copy, its log event's own payload", async () => {
      const listed = await call(h.app, {
        method: "GET",
        url: "/api/v1/message-events",
        headers: bearer(key),
      });
      expect(
        listed.body.events.map((e: { provider_event_id: string; payload: unknown }) => [
          e.provider_event_id,
          e.payload,
        ]),
      ).toEqual([
        ["old-2", events[1]],
        ["old-1", events[0]],
      ]);
      const logged = await call(h.app, {
        method: "GET",
        url: "/api/v1/events?type=message.*",
        headers: bearer(key),
      });
      expect(logged.body.total).toBe(2);
      expect(logged.body.events.map((e: { payload: { provider_event_id: string } }) => e.payload)).toEqual([
        expect.objectContaining({ provider_event_id: "old-2", recipient: "bob@example.com" }),
        expect.objectContaining({ provider_event_id: "old-1", recipient: "ada@example.com" }),
      ]);
    });

    it("counted the delivered outbox rows into the rollups, and left none", async () => {
      expect(await count(t.database.db, "outbox", `tenant_id = '${tenantId}'`)).toBe(0);
      const [rollup] = await query<{ delivered: number; retried: number }>(
        t.database.db,
        sql`select sum(delivered)::int as delivered, sum(retried)::int as retried from delivery_rollups
          where tenant_id = ${tenantId}`,
      );
      expect(rollup).toEqual({ delivered: 2, retried: 1 });
    });

    it("reprocessing the old delivery, and SendGrid posting it again, store nothing twice; a new event is stored once", async () => {
      expect(await reprocess(t.database.db, { sourceId })).toEqual({ deliveries: 1, stored: 0, failed: [] });
      const fresh = { email: "cy@example.com", event: "delivered", sg_event_id: "new-1", timestamp: 3 };
      const again = Buffer.from(JSON.stringify([...events, fresh]));
      const posted = await h.app.inject({
        method: "POST",
        url: sourceUrl,
        payload: again,
        headers: { "content-type": "application/json", ...keys.sign(again) },
      });
      expect(posted.statusCode).toBe(200);
      await processAllDeliveries(t.database);
      expect(await count(t.database.db, "message_events", `tenant_id = '${tenantId}'`)).toBe(3);
      expect(await count(t.database.db, "events", `tenant_id = '${tenantId}'`)).toBe(3);
      expect(await count(t.database.db, "message_event_keys", `tenant_id = '${tenantId}'`)).toBe(3);
      const listed = await h.app.inject({
        method: "GET",
        url: "/api/v1/message-events",
        headers: bearer(key),
      });
      expect(listed.body).toContain(`"payload":${JSON.stringify(fresh)}`);
    });
  });
}
