import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { formatTable, partitionTable } from "../src/cli/partitions.js";
import { query } from "../src/db/client.js";
import { errorCode } from "../src/db/errors.js";
import {
  ensureMonthsAhead,
  listPartitions,
  monthlyPartitionedTables,
  type TableMonths,
} from "../src/db/partitionUpkeep.js";
import { createProcessor } from "../src/ingest/processor.js";
import { startPartitionUpkeep } from "../src/scheduler/maintenance.js";
import { backends, createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
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

/** `maintain_partitions` (HERALD_PARTITIONS_AHEAD) and `herald partitions list`, clock-driven. */
for (const backend of backends()) {
  describe(`partitions made ahead, on ${backend}`, () => {
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

    const exists = async (name: string) =>
      (await query(t.database.db, sql`select 1 from pg_class where relname = ${name}`)).length > 0;
    const names = (table: string, ...months: string[]) => months.map((m) => `${table}_${m}`);
    const madeBy = (runs: TableMonths[][]) => runs.flat().flatMap((r) => r.made);

    it("makes the previous, the current and the next N months of every monthly-partitioned table, once", async () => {
      expect(await monthlyPartitionedTables(t.database.db)).toEqual(["events", "message_events"]);
      const now = new Date("2040-03-15T12:00:00Z");
      const months = ["2040_02", "2040_03", "2040_04", "2040_05", "2040_06"];
      const first = await ensureMonthsAhead(t.database.db, { months: 3, now });
      expect(first).toEqual([
        { table: "events", made: names("events", ...months), wanted: names("events", ...months) },
        {
          table: "message_events",
          made: names("message_events", ...months),
          wanted: names("message_events", ...months),
        },
      ]);
      expect(madeBy([await ensureMonthsAhead(t.database.db, { months: 3, now })])).toEqual([]);
      expect(await exists("events_2040_07")).toBe(false);
    });

    it("runs from several callers at once beside writers into the same months: each month made once, no write fails", async () => {
      const { api_key: key } = (
        await call(h.app, {
          method: "POST",
          url: "/api/v1/admin/tenants",
          headers: bearer(adminToken),
          payload: { name: "beside-upkeep" },
        })
      ).body;
      // The upkeep's clock in May 2006, so writers may write into its months (the API refuses the future).
      const now = new Date("2006-05-15T00:00:00Z");
      const at = (i: number) => new Date(Date.UTC(2006, 3 + (i % 5), 1 + (i % 28), 12)).toISOString();
      const [runs, writes] = await Promise.all([
        Promise.all(Array.from({ length: 3 }, () => ensureMonthsAhead(t.database.db, { months: 3, now }))),
        Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            i % 2 === 0
              ? call(h.app, {
                  method: "POST",
                  url: "/api/v1/events",
                  headers: bearer(key),
                  payload: { event_type: "order.placed", source: "manual", timestamp: at(i) },
                })
              : call(h.app, {
                  method: "POST",
                  url: "/api/v1/messages",
                  headers: bearer(key),
                  payload: {
                    channel: "email",
                    provider: "sendgrid",
                    to: `u${i}@example.com`,
                    provider_message_id: `upkeep-${i}`,
                    sent_at: at(i),
                  },
                }),
          ),
        ),
      ]);
      expect(writes.map((w) => w.status)).toEqual(writes.map(() => 201));
      const months = ["2006_04", "2006_05", "2006_06", "2006_07", "2006_08"];
      const wanted = [...names("events", ...months), ...names("message_events", ...months)];
      for (const name of wanted) expect(await exists(name)).toBe(true);
      // Made by the upkeep or by a writer, never twice; what the upkeep reports made, it made.
      const made = madeBy(runs);
      expect(new Set(made).size).toBe(made.length);
      for (const name of made) expect(wanted).toContain(name);
    }, 60_000);

    it("runs maintain_partitions at start and on demand, by the injected clock", async () => {
      const reported: TableMonths[][] = [];
      const upkeep = startPartitionUpkeep({
        db: t.database.db,
        monthsAhead: 2,
        clock: { now: () => new Date("2042-01-10T00:00:00Z") },
        intervalMs: 3600_000,
        onRun: (made) => reported.push(made),
      });
      try {
        expect(madeBy([await upkeep.runNow()])).toEqual([]); // after the run at start, which made them
        expect(reported).toHaveLength(2);
        expect(madeBy(reported)).toEqual([
          ...names("events", "2041_12", "2042_01", "2042_02", "2042_03"),
          ...names("message_events", "2041_12", "2042_01", "2042_02", "2042_03"),
        ]);
      } finally {
        await upkeep.stop();
      }
    });

    it("lists each partition with its range, rows, size and archive state", async () => {
      const { api_key: key } = (
        await call(h.app, {
          method: "POST",
          url: "/api/v1/admin/tenants",
          headers: bearer(adminToken),
          payload: { name: "listed" },
        })
      ).body;
      for (const ts of ["2007-02-03T00:00:00Z", "2007-02-04T00:00:00Z"]) {
        const written = await call(h.app, {
          method: "POST",
          url: "/api/v1/events",
          headers: bearer(key),
          payload: { event_type: "order.placed", source: "manual", timestamp: ts },
        });
        expect(written.status).toBe(201);
      }
      // `archives` is retention's table (src/retention/): read only if it exists.
      const hasArchives =
        (
          await query<{ found: boolean }>(
            t.database.db,
            sql`select to_regclass('archives') is not null as found`,
          )
        )[0]?.found === true;
      if (hasArchives)
        await t.database.db.execute(sql`insert into archives
          (table_name, month, partition_name, state, path, format, rows, bytes, sha256, content_sha256)
          values ('events', '2007-02-01Z', 'events_2007_02', 'verified', '/a', 'copy.gz', 2, 10, 'x', 'y'),
                 ('events', '2000-05-01Z', 'events_2000_05', 'dropped', '/b', 'copy.gz', 7, 10, 'x', 'y')`);
      const list = await listPartitions(t.database.db, { exact: true });
      const feb = list.find((p) => p.partition === "events_2007_02");
      expect(feb).toMatchObject({
        table: "events",
        from: new Date("2007-02-01T00:00:00Z"),
        to: new Date("2007-03-01T00:00:00Z"),
        exactRows: 2,
        archived: hasArchives ? "verified" : undefined,
      });
      expect(feb?.bytes).toBeGreaterThan(0);
      const march = list.find((p) => p.partition === "events_2040_03");
      expect(march?.archived).toBeUndefined();
      expect(list.filter((p) => p.table === "message_events").length).toBeGreaterThan(5);
      const text = formatTable(partitionTable(list));
      expect(text.split("\n")[0]).toMatch(/^partition\s+range\s+rows\s+size\s+archived$/);
      expect(text).toMatch(/events_2040_03\s+2040-03-01 \.\. 2040-04-01\s+0\s+\S+ \S+\s+no/);
      if (hasArchives) {
        expect(list.find((p) => p.partition === "events_2000_05")).toMatchObject({
          bytes: null,
          exactRows: 7,
          archived: "dropped",
        });
        expect(text).toMatch(/events_2000_05\s+2000-05-01 \.\. 2000-06-01\s+7\s+dropped\s+dropped/);
      }
    });
  });
}

/**
 * The upkeep waits at most its lock timeout: behind a writer of `outbound_messages` (which attaching a month
 * of `message_events` must wait for) it gives up instead of holding up the writers queued behind it.
 */
describe.runIf(hasPostgres())("partitions made ahead beside a long writer (PostgreSQL)", () => {
  let t: TestDatabase;
  let raw: postgres.Sql;

  beforeAll(async () => {
    t = await createTestDatabase("postgres");
    raw = postgres(t.url!, { max: 3, onnotice: () => {} });
  });
  afterAll(async () => {
    await raw?.end();
    await t?.drop();
  });

  it("gives way to a transaction writing outbound_messages, and makes the month once it is over", async () => {
    const now = new Date("2050-06-15T00:00:00Z");
    const exists = async (name: string) => (await raw`select to_regclass(${name}) is not null as f`)[0]?.f;
    const writer = await raw.reserve();
    await writer`begin`;
    await writer`lock table outbound_messages in row exclusive mode`; // as an insert holds it
    try {
      const started = Date.now();
      const upkeep = ensureMonthsAhead(t.database.db, {
        months: 1,
        now,
        lockTimeoutMs: 100,
        attempts: 3,
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      // Another writer arriving meanwhile queues behind the upkeep's wait, never longer than it lasts.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const queued = Date.now();
      await raw.begin(async (tx) => {
        await tx`set local lock_timeout = 2000`;
        await tx`lock table outbound_messages in row exclusive mode`;
      });
      expect(Date.now() - queued).toBeLessThan(1000);
      expect(errorCode(await upkeep)).toBe("55P03");
      expect(Date.now() - started).toBeLessThan(5000);
      for (const m of ["2050_05", "2050_06", "2050_07"]) expect(await exists(`events_${m}`)).toBe(true);
      expect(await exists("message_events_2050_05")).toBe(false);
    } finally {
      await writer`commit`;
      writer.release();
    }
    const made = await ensureMonthsAhead(t.database.db, { months: 1, now, lockTimeoutMs: 100 });
    expect(made.flatMap((m) => m.made)).toEqual([
      "message_events_2050_05",
      "message_events_2050_06",
      "message_events_2050_07",
    ]);
  }, 30_000);
});
