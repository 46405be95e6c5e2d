import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { createProcessor } from "../src/ingest/processor.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call } from "./support/http.js";
import { eventually } from "./support/wait.js";

const adminToken = "partitions-admin-token-0123456789";

/**
 * Rows of a month with no partition yet, written by many requests at once: the month's partition is made on
 * demand while other transactions read and write the same tables, and no request may fail for it (issue 13,
 * item 6: a deadlock between the partition's creation and message registration answered 503).
 */
for (const backend of backends()) {
  describe(`writes into months with no partition yet, on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
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
      return { key: created.body.api_key as string, id: created.body.tenant.id as string };
    }

    const partitionOf = async (table: string, month: string) =>
      (await query(t.database.db, sql`select 1 from pg_class where relname = ${`${table}_${month}`}`))
        .length > 0;

    /** Start of a UTC month, `offset` months after January 2002 (well before any partition made ahead). */
    const month = (offset: number) => new Date(Date.UTC(2002, offset, 1));

    it("registers 50 messages at once whose sent_at is in a month with no partition", async () => {
      const { key, id } = await tenant("senders");
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          call(h.app, {
            method: "POST",
            url: "/api/v1/messages",
            headers: bearer(key),
            payload: {
              channel: "email",
              provider: "sendgrid",
              to: `r${i}@example.com`,
              provider_message_id: `sent-${i}`,
              sent_at: new Date(Date.UTC(2002, 0, 1 + (i % 28), 12)).toISOString(),
            },
          }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 201));
      expect(await count(t.database.db, "outbound_messages", `tenant_id = '${id}'`)).toBe(50);
    });

    it("stores 50 events written at once into months with no partition", async () => {
      const { key, id } = await tenant("writers");
      // Five new months, ten writers each, and a batch spanning all five.
      const responses = await Promise.all([
        ...Array.from({ length: 50 }, (_, i) =>
          call(h.app, {
            method: "POST",
            url: "/api/v1/events",
            headers: bearer(key),
            payload: {
              event_type: "order.placed",
              source: "manual",
              payload: { i },
              timestamp: new Date(month(12 + (i % 5)).getTime() + i * 60_000).toISOString(),
            },
          }),
        ),
        call(h.app, {
          method: "POST",
          url: "/api/v1/events/batch",
          headers: bearer(key),
          payload: {
            events: Array.from({ length: 5 }, (_, i) => ({
              event_type: "order.batched",
              source: "manual",
              timestamp: new Date(month(12 + i).getTime() + 3_600_000).toISOString(),
            })),
          },
        }),
      ]);
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 201));
      expect(await count(t.database.db, "events", `tenant_id = '${id}'`)).toBe(55);
      for (let i = 0; i < 5; i++) expect(await partitionOf("events", monthKey(month(12 + i)))).toBe(true);
    });

    it("makes the partitions of a delivery's months before answering it, outside the processor", async () => {
      const { key } = await tenant("door");
      const source = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "sendgrid" },
      });
      const at = month(100);
      expect(await partitionOf("message_events", monthKey(at))).toBe(false);
      const received = await call(h.app, {
        method: "POST",
        url: source.body.url,
        headers: { "content-type": "application/json" },
        payload: JSON.stringify([
          {
            event: "delivered",
            email: "a@example.com",
            timestamp: at.getTime() / 1000,
            sg_event_id: "door-1",
          },
        ]),
      });
      expect(received.status).toBe(200);
      expect(await partitionOf("message_events", monthKey(at))).toBe(true);
      expect(await partitionOf("events", monthKey(at))).toBe(true);
    });

    it("registers messages while their events of months with no partition are received and processed", async () => {
      const { key, id } = await tenant("racers");
      const source = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "sendgrid" },
      });
      expect(source.status).toBe(201);
      const processor = createProcessor({
        db: t.database.db,
        listen: t.database.listen,
        pollIntervalMs: 20,
        concurrency: 4,
      });
      await processor.start();
      try {
        // Each round: ten messages registered and ten deliveries received at once, each delivery holding
        // the events of one message, in a month of its own with no partition (5 rounds × 10 months).
        const registrations: Awaited<ReturnType<typeof call>>[] = [];
        const receipts: Awaited<ReturnType<typeof call>>[] = [];
        for (let round = 0; round < 5; round++) {
          const ids = Array.from({ length: 10 }, (_, i) => round * 10 + i);
          const results = await Promise.all([
            ...ids.map((n) =>
              call(h.app, {
                method: "POST",
                url: "/api/v1/messages",
                headers: bearer(key),
                payload: {
                  channel: "email",
                  provider: "sendgrid",
                  to: `r${n}@example.com`,
                  provider_message_id: `race${n}`,
                },
              }),
            ),
            ...ids.map((n) =>
              call(h.app, {
                method: "POST",
                url: source.body.url,
                headers: { "content-type": "application/json" },
                payload: JSON.stringify(
                  ["processed", "delivered"].map((event, e) => ({
                    event,
                    email: `r${n}@example.com`,
                    timestamp: month(40 + n).getTime() / 1000 + 60 * e,
                    sg_event_id: `race-${n}-${event}`,
                    sg_message_id: `race${n}.filter0001.${n}.0`,
                  })),
                ),
              }),
            ),
          ]);
          registrations.push(...results.slice(0, 10));
          receipts.push(...results.slice(10));
        }
        console.log(
          registrations
            .filter((r) => r.status !== 201)
            .slice(0, 3)
            .map((r) => r.body),
        );
        expect(registrations.map((r) => r.status)).toEqual(registrations.map(() => 201));
        expect(receipts.map((r) => r.status)).toEqual(receipts.map(() => 200));
        await eventually(
          async () =>
            (await count(
              t.database.db,
              "webhook_deliveries",
              `tenant_id = '${id}' and status <> 'completed'`,
            )) === 0,
          30_000,
          "deliveries processed",
        );
      } finally {
        await processor.stop();
      }
      // Every event stored once and linked to its message, which moved to delivered; no attempt failed.
      expect(await count(t.database.db, "message_events", `tenant_id = '${id}'`)).toBe(100);
      expect(
        await count(t.database.db, "message_events", `tenant_id = '${id}' and outbound_message_id is null`),
      ).toBe(0);
      expect(
        await count(t.database.db, "outbound_messages", `tenant_id = '${id}' and status = 'delivered'`),
      ).toBe(50);
      expect(
        await query(
          t.database.db,
          sql`select id, attempts, last_error from webhook_deliveries
            where tenant_id = ${id} and (attempts > 1 or last_error is not null)`,
        ),
      ).toEqual([]);
      for (const n of [0, 25, 49])
        expect(await partitionOf("message_events", monthKey(month(40 + n)))).toBe(true);
    }, 90_000);
  });
}

const monthKey = (date: Date) =>
  `${date.getUTCFullYear()}_${String(date.getUTCMonth() + 1).padStart(2, "0")}`;

/**
 * Where an event goes whatever its time (README, "Partitions"): a month with no partition is made on demand
 * (before the write's transaction, for the API and webhooks); a time the API refuses (before 2000, after
 * tomorrow) is 400 with its path; a provider's implausible time falls back to the moment it was received.
 */
for (const backend of backends()) {
  describe(`events whatever their time, on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    let key: string;
    let tenantId: string;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "timely" },
      });
      key = created.body.api_key;
      tenantId = created.body.tenant.id;
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    const post = (timestamp: string, payload: Record<string, unknown> = {}) =>
      call(h.app, {
        method: "POST",
        url: "/api/v1/events",
        headers: bearer(key),
        payload: { event_type: "order.placed", source: "manual", payload, timestamp },
      });
    /** The partition a row of `table` is stored in. */
    const partitionHolding = async (table: string, id: string) =>
      (
        await query<{ name: string }>(
          t.database.db,
          sql`select tableoid::regclass::text as name from ${sql.identifier(table)} where id = ${id}`,
        )
      )[0]?.name;
    const exists = async (name: string) =>
      (await query(t.database.db, sql`select 1 from pg_class where relname = ${name}`)).length > 0;

    it("stores events on both sides of a month boundary in their own months", async () => {
      expect(await exists("events_2004_01")).toBe(false);
      const before = await post("2004-01-31T23:59:59.999Z");
      const after = await post("2004-02-01T00:00:00.000Z");
      expect([before.status, after.status]).toEqual([201, 201]);
      expect(await partitionHolding("events", before.body.id)).toBe("events_2004_01");
      expect(await partitionHolding("events", after.body.id)).toBe("events_2004_02");
      const read = await call(h.app, {
        method: "GET",
        url: `/api/v1/events/${before.body.id}`,
        headers: bearer(key),
      });
      expect(read.body.timestamp).toBe("2004-01-31T23:59:59.999Z");
    });

    it("makes the month of an event years before every partition on demand", async () => {
      expect(await exists("events_2001_03")).toBe(false);
      const old = await post("2001-03-04T05:06:07Z");
      expect(old.status).toBe(201);
      expect(await partitionHolding("events", old.body.id)).toBe("events_2001_03");
    });

    it("refuses API event times outside 2000 … tomorrow (1999, 2031) with the path, making no partition", async () => {
      for (const timestamp of ["1999-06-01T00:00:00Z", "2031-06-01T00:00:00Z"]) {
        const refused = await post(timestamp);
        expect(refused.status).toBe(400);
        expect(refused.body.errors).toEqual([{ path: "/body/timestamp", message: "out of range" }]);
      }
      const batch = await call(h.app, {
        method: "POST",
        url: "/api/v1/events/batch",
        headers: bearer(key),
        payload: {
          events: [
            { event_type: "a", source: "manual", timestamp: "2020-01-01T00:00:00Z" },
            { event_type: "b", source: "manual", timestamp: "2031-01-01T00:00:00Z" },
          ],
        },
      });
      expect(batch.status).toBe(400);
      expect(batch.body.errors).toEqual([{ path: "/body/events/1/timestamp", message: "out of range" }]);
      for (const name of ["events_1999_06", "events_2031_06", "events_2031_01"])
        expect(await exists(name)).toBe(false);
    });

    it("stores a webhook's events of 1999 and 2031 at their receipt, in the current month", async () => {
      const source = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "sendgrid" },
      });
      const receivedAt = Date.now();
      const received = await call(h.app, {
        method: "POST",
        url: source.body.url,
        headers: { "content-type": "application/json" },
        payload: JSON.stringify(
          [Date.UTC(1999, 5, 1), Date.UTC(2031, 5, 1)].map((ms, i) => ({
            event: "delivered",
            email: "far@example.com",
            timestamp: ms / 1000,
            sg_event_id: `far-${i}`,
          })),
        ),
      });
      expect(received.status).toBe(200);
      const processor = createProcessor({ db: t.database.db, listen: t.database.listen, pollIntervalMs: 20 });
      await processor.start();
      try {
        await eventually(
          async () => (await count(t.database.db, "message_events", `tenant_id = '${tenantId}'`)) === 2,
          30_000,
          "webhook events stored",
        );
      } finally {
        await processor.stop();
      }
      const rows = await query<{ at: Date | string; name: string }>(
        t.database.db,
        sql`select event_at as at, tableoid::regclass::text as name from message_events where tenant_id = ${tenantId}`,
      );
      const current = `message_events_${monthKey(new Date(receivedAt))}`;
      for (const row of rows) {
        expect(Math.abs(new Date(row.at).getTime() - receivedAt)).toBeLessThan(60_000);
        expect(row.name).toBe(current);
      }
      for (const name of ["message_events_1999_06", "message_events_2031_06", "events_1999_06"])
        expect(await exists(name)).toBe(false);
    });

    it("stores 50 events written at once into one month with no partition, making it once", async () => {
      expect(await exists("events_2005_08")).toBe(false);
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          post(new Date(Date.UTC(2005, 7, 1 + (i % 31), i % 24)).toISOString(), { i }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 201));
      const where = sql`tenant_id = ${tenantId} and ts >= '2005-08-01Z' and ts < '2005-09-01Z'`;
      const stored = await query<{ n: number | string; parts: number | string }>(
        t.database.db,
        sql`select count(*) as n, count(distinct tableoid) as parts from events where ${where}`,
      );
      expect(Number(stored[0]?.n)).toBe(50);
      expect(Number(stored[0]?.parts)).toBe(1);
      expect(await exists("events_2005_08")).toBe(true);
    });
  });
}
