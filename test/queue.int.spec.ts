import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { latencyBucketCount, latencyBucketOf } from "../src/bus/latencyBuckets.js";
import { outboxQueue } from "../src/bus/outboxQueue.js";
import { createSubscription } from "../src/bus/subscriptions.js";
import { type Db, query } from "../src/db/client.js";
import { backoffCeilingMs, backoffDelayMs } from "../src/domain/backoff.js";
import { writeEvents } from "../src/events/write.js";
import { claimBatch } from "../src/queue/claim.js";
import { completeBatch } from "../src/queue/complete.js";
import { scheduledActionsQueue } from "../src/queue/definitions.js";
import { enqueue } from "../src/queue/enqueue.js";
import { failBatch } from "../src/queue/fail.js";
import { reapExpired } from "../src/queue/reap.js";
import { releaseBatch } from "../src/queue/release.js";
import { QueueWakeups } from "../src/queue/wakeups.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { eventually, sleep } from "./support/wait.js";

/** The claim engine's statements, driven with an explicit clock: no sleeping. */
for (const backend of backends()) {
  describe(`claim engine on ${backend}`, () => {
    let t: TestDatabase;
    let db: Db;
    let tenant: string;
    const t0 = new Date("2030-01-01T00:00:00.000Z");
    const at = (ms: number) => new Date(t0.getTime() + ms);

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      db = t.database.db;
      tenant = await makeTenant(db);
      await createSubscription(db, tenant, {
        name: "s",
        eventTypes: ["*"],
        sink: { type: "handler", name: "x" },
        maxAttempts: 3,
      });
    });
    afterAll(() => t?.drop());

    async function freshRows(n: number, eventTypes = ["q.test"]) {
      await db.execute(sql`delete from outbox`);
      await db.execute(sql`delete from delivery_rollups`);
      await writeEvents(
        db,
        Array.from({ length: n }, (_, i) => ({
          tenantId: tenant,
          eventType: eventTypes[i % eventTypes.length]!,
          source: "system" as const,
          payload: { i },
        })),
      );
      // Make them due at t0 exactly, written then (so a row's latency is its completion's time after t0).
      await db.execute(
        sql`update outbox set next_attempt_at = ${t0.toISOString()}::timestamptz, created_at = ${t0.toISOString()}::timestamptz`,
      );
    }

    interface Rollup {
      minute: string;
      subscription_id: string;
      event_type: string;
      delivered: number;
      retried: number;
      latency_ms_sum: number;
      latency_ms_max: number;
      latency_buckets: number[];
      last_delivered_at: string;
    }

    /** The rollup rows, in key order, with readable times and numbers on both drivers. */
    async function rollups(): Promise<Rollup[]> {
      const rows = await query<Record<string, unknown>>(
        db,
        sql`select to_char(minute at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as minute, subscription_id,
          event_type, delivered, retried, latency_ms_sum, latency_ms_max, array_to_json(latency_buckets) as latency_buckets,
          to_char(last_delivered_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as last_delivered_at
        from delivery_rollups order by tenant_id, minute, subscription_id, event_type`,
      );
      return rows.map((r) => ({
        minute: r.minute as string,
        subscription_id: r.subscription_id as string,
        event_type: r.event_type as string,
        delivered: Number(r.delivered),
        retried: Number(r.retried),
        latency_ms_sum: Number(r.latency_ms_sum),
        latency_ms_max: Number(r.latency_ms_max),
        latency_buckets: (typeof r.latency_buckets === "string"
          ? JSON.parse(r.latency_buckets)
          : (r.latency_buckets as number[])
        ).map(Number),
        last_delivered_at: r.last_delivered_at as string,
      }));
    }

    /** A 72-bucket histogram with `n` in bucket `k` (and so on for more pairs). */
    const histogram = (...pairs: [number, number][]) => {
      const buckets = new Array<number>(latencyBucketCount).fill(0);
      for (const [k, n] of pairs) buckets[k] = n;
      return buckets;
    };

    it("buckets latencies in SQL as latencyBuckets.ts does, edges included", async () => {
      const values = [0, 0.999, 1, 1.25, 1.26, 2, 3, 8, 16, 1000, 1500, 2 ** (70 / 3), 86_400_000];
      for (let k = 1; k < latencyBucketCount; k++) values.push(2 ** (k / 3), 2 ** (k / 3) * 0.999999);
      const rows = await query<{ b: number }>(
        t.database.db,
        sql`select herald_latency_bucket(ms) as b from unnest(${`{${values.join(",")}}`}::float8[]) with ordinality
          as v(ms, i) order by i`,
      );
      expect(rows.map((r) => Number(r.b))).toEqual(values.map(latencyBucketOf));
    });

    it("claims due rows once, with a lease, and counts the attempt", async () => {
      await freshRows(5);
      expect(
        await claimBatch(db, outboxQueue, { workerId: "a", limit: 10, leaseMs: 1000, now: at(-1) }),
      ).toEqual([]);
      const first = await claimBatch(db, outboxQueue, { workerId: "a", limit: 3, leaseMs: 1000, now: t0 });
      expect(first).toHaveLength(3);
      expect(first.every((r) => r.attempts === 1 && r.locked_by === "a" && r.status === "processing")).toBe(
        true,
      );
      expect(first[0]!.event).toBeTruthy(); // the claim hands back the event to deliver
      const second = await claimBatch(db, outboxQueue, { workerId: "b", limit: 10, leaseMs: 1000, now: t0 });
      expect(second.map((r) => r.id).sort()).not.toEqual(expect.arrayContaining(first.map((r) => r.id)));
      expect(second).toHaveLength(2);
      expect(await claimBatch(db, outboxQueue, { workerId: "c", limit: 10, leaseMs: 1000, now: t0 })).toEqual(
        [],
      );
    });

    it("coalesces wake-ups sent after commit: a burst of 50 calls sends at most two NOTIFYs", async () => {
      const heard: string[] = [];
      const unlisten = await t.database.listen(scheduledActionsQueue.channel, (payload) =>
        heard.push(payload),
      );
      const wakeups = new QueueWakeups(db, scheduledActionsQueue);
      for (let i = 0; i < 50; i++) wakeups.wake();
      await eventually(() => heard.length >= 1, 5_000, "a wake-up");
      // At most two is an absence over a window, so the window is the point: the coalesced follow-up, if
      // any, is sent right after the first NOTIFY returns, well within 300 ms; a third would be a bug.
      await sleep(300);
      expect(heard.length).toBeGreaterThanOrEqual(1);
      expect(heard.length).toBeLessThanOrEqual(2);
      // A later call, once the burst is written, is heard again.
      const before = heard.length;
      wakeups.wake();
      await eventually(() => heard.length === before + 1, 5_000, "the next wake-up");
      await unlisten();
    });

    it("refuses a completion whose lease was lost, and accepts the new owner's", async () => {
      await freshRows(1);
      const [mine] = await claimBatch(db, outboxQueue, {
        workerId: "late",
        limit: 1,
        leaseMs: 1000,
        now: t0,
      });
      expect(await reapExpired(db, outboxQueue, at(999))).toBe(0);
      expect(await reapExpired(db, outboxQueue, at(1001))).toBe(1);
      const [theirs] = await claimBatch(db, outboxQueue, {
        workerId: "new",
        limit: 1,
        leaseMs: 1000,
        now: at(1001),
      });
      expect(theirs!.id).toBe(mine!.id);
      expect(theirs!.attempts).toBe(2);
      expect(await completeBatch(db, outboxQueue, "late", [mine!], at(1500))).toEqual([]);
      // Same worker id but the old attempt: also refused.
      expect(await completeBatch(db, outboxQueue, "new", [mine!], at(1500))).toEqual([]);
      // Refused means not counted either: the row is still the new owner's, and nothing was delivered.
      expect(
        await count(db, "outbox", `id = ${mine!.id} and status = 'processing' and locked_by = 'new'`),
      ).toBe(1);
      expect(await rollups()).toEqual([]);
      expect(await completeBatch(db, outboxQueue, "new", [theirs!], at(1500))).toEqual([mine!.id]);
      expect(await count(db, "outbox", `id = ${mine!.id}`)).toBe(0);
      expect(await rollups()).toMatchObject([{ delivered: 1, retried: 1 }]);
      // Completing again (a duplicate acknowledgement) finds nothing and counts nothing.
      expect(await completeBatch(db, outboxQueue, "new", [theirs!], at(1600))).toEqual([]);
      expect(await rollups()).toMatchObject([{ delivered: 1, retried: 1 }]);
    });

    it("deletes a delivered row and counts it into its minute's rollup, in the same statement", async () => {
      await freshRows(4, ["q.one", "q.two"]);
      const [subscription] = await query<{ id: string }>(
        db,
        sql`select id from subscriptions where tenant_id = ${tenant}`,
      );
      const rows = await claimBatch(db, outboxQueue, { workerId: "w", limit: 4, leaseMs: 60_000, now: t0 });
      const ofType = (type: string) => rows.filter((r) => r.event_type === type);
      // Two rows of q.one after 1.5 s, in one statement; then one of q.two after 3 ms.
      expect(await completeBatch(db, outboxQueue, "w", ofType("q.one"), at(1500))).toHaveLength(2);
      expect(await completeBatch(db, outboxQueue, "w", ofType("q.two").slice(0, 1), at(3))).toHaveLength(1);
      const eventIds = rows.slice(0, 3).map((r) => `'${r.event_id}'`);
      expect(await count(db, "outbox", `event_id in (${eventIds.join(", ")})`)).toBe(0);
      // 1,500 ms is in bucket 32 ([2^(31/3), 2^(32/3)) ≈ [1290, 1625) ms), 3 ms in bucket 5 ([2.52, 3.17) ms).
      expect([latencyBucketOf(1500), latencyBucketOf(3)]).toEqual([32, 5]);
      const minute = "2030-01-01T00:00:00Z";
      expect(await rollups()).toEqual([
        {
          minute,
          subscription_id: subscription!.id,
          event_type: "q.one",
          delivered: 2,
          retried: 0,
          latency_ms_sum: 3000,
          latency_ms_max: 1500,
          latency_buckets: histogram([32, 2]),
          last_delivered_at: "2030-01-01T00:00:01.500Z",
        },
        {
          minute,
          subscription_id: subscription!.id,
          event_type: "q.two",
          delivered: 1,
          retried: 0,
          latency_ms_sum: 3,
          latency_ms_max: 3,
          latency_buckets: histogram([5, 1]),
          last_delivered_at: "2030-01-01T00:00:00.003Z",
        },
      ]);
      // The last row in the same minute adds to its key's counts, histogram included; a row completed a
      // minute later starts the next minute's rollup.
      const last = ofType("q.two")[1]!;
      expect(await completeBatch(db, outboxQueue, "w", [last], at(59_000))).toEqual([last.id]);
      const [, two] = await rollups();
      expect(two).toMatchObject({
        delivered: 2,
        latency_ms_sum: 59_003,
        latency_ms_max: 59_000,
        latency_buckets: histogram([5, 1], [latencyBucketOf(59_000), 1]),
        last_delivered_at: "2030-01-01T00:00:59.000Z",
      });
      // In a transaction that rolls back, a completion neither deletes nor counts.
      await freshRows(1);
      const [row] = await claimBatch(db, outboxQueue, { workerId: "w", limit: 1, leaseMs: 60_000, now: t0 });
      await expect(
        db.transaction(async (tx) => {
          expect(await completeBatch(tx, outboxQueue, "w", [row!], at(61_000))).toEqual([row!.id]);
          throw new Error("rolled back");
        }),
      ).rejects.toThrow("rolled back");
      expect(await count(db, "outbox", `id = ${row!.id} and status = 'processing'`)).toBe(1);
      expect(await rollups()).toEqual([]);
      expect(await completeBatch(db, outboxQueue, "w", [row!], at(61_000))).toEqual([row!.id]);
      expect(await rollups()).toMatchObject([
        { minute: "2030-01-01T00:01:00Z", event_type: "q.test", delivered: 1 },
      ]);
    });

    it("counts every row once when workers complete rows of the same rollup keys at once", async () => {
      const types = ["q.a", "q.b", "q.c"];
      await freshRows(240, types);
      const a = await claimBatch(db, outboxQueue, { workerId: "a", limit: 120, leaseMs: 60_000, now: t0 });
      const b = await claimBatch(db, outboxQueue, { workerId: "b", limit: 120, leaseMs: 60_000, now: t0 });
      expect(a.length + b.length).toBe(240);
      // Each worker acknowledges in batches of 8 rows of all three types (so every statement upserts the
      // same three keys), a worker's batches in reverse order, all at once: on PostgreSQL they run on
      // separate connections and wait on each other's rollup rows.
      const batches = (rows: typeof a, worker: string, reverse: boolean) => {
        const chunks = Array.from({ length: Math.ceil(rows.length / 8) }, (_, i) =>
          rows.slice(i * 8, i * 8 + 8),
        );
        if (reverse) for (const chunk of chunks) chunk.reverse();
        return chunks.map((chunk) => () => completeBatch(db, outboxQueue, worker, chunk, at(2000)));
      };
      const all = [...batches(a, "a", false), ...batches(b, "b", true)];
      const done = (await Promise.all(all.map((run) => run()))).flat();
      expect(done).toHaveLength(240);
      expect(new Set(done).size).toBe(240);
      expect(await count(db, "outbox")).toBe(0);
      const counted = await rollups();
      expect(counted.map((r) => [r.event_type, r.delivered])).toEqual(types.map((t) => [t, 80]));
      for (const r of counted) {
        expect(r.latency_buckets).toEqual(histogram([latencyBucketOf(2000), 80]));
        expect(r.latency_ms_sum).toBe(160_000);
      }
    });

    it("retries on the backoff schedule and dead-letters after max_attempts, in the same statement", async () => {
      await freshRows(1);
      let now = t0;
      const random = () => 0.5;
      for (let attempt = 1; attempt <= 3; attempt++) {
        const [row] = await claimBatch(db, outboxQueue, { workerId: "w", limit: 1, leaseMs: 1000, now });
        expect(row?.attempts).toBe(attempt);
        const delayMs = backoffDelayMs(attempt, { baseMs: 1000, maxMs: 60_000 }, random);
        const [outcome] = await failBatch(
          db,
          outboxQueue,
          "w",
          [{ ...row!, error: `boom ${attempt}`, delayMs }],
          now,
        );
        if (attempt < 3) {
          expect(outcome!.status).toBe("pending");
          expect(Date.parse(outcome!.nextAttemptAt)).toBe(now.getTime() + delayMs);
          // Not due a millisecond early; due on time.
          expect(
            await claimBatch(db, outboxQueue, {
              workerId: "w",
              limit: 1,
              leaseMs: 1000,
              now: new Date(now.getTime() + delayMs - 1),
            }),
          ).toEqual([]);
          now = new Date(now.getTime() + delayMs);
        } else {
          expect(outcome!.status).toBe("dead");
        }
      }
      const [dead] = await query<{ attempts: number; last_error: string }>(
        db,
        sql`select attempts, last_error from dead_letters`,
      );
      expect(dead).toEqual({ attempts: 3, last_error: "boom 3" });
    });

    it("makes a row dead when its last attempt's lease expires (a message that kills workers cannot loop)", async () => {
      await freshRows(1);
      await db.execute(sql`delete from dead_letters`);
      await db.execute(sql`update outbox set attempts = 2`);
      await claimBatch(db, outboxQueue, { workerId: "doomed", limit: 1, leaseMs: 1000, now: t0 });
      expect(await reapExpired(db, outboxQueue, at(5000))).toBe(1);
      expect(await count(db, "outbox", "status = 'dead'")).toBe(1);
      expect(await count(db, "dead_letters", "last_error like 'lease expired%'")).toBe(1);
    });

    it("enqueues rows in the caller's transaction and wakes listeners once, at commit", async () => {
      const heard: string[] = [];
      const unlisten = await t.database.listen(scheduledActionsQueue.channel, (payload) =>
        heard.push(payload),
      );
      await db.transaction(async (tx) => {
        await enqueue(tx, scheduledActionsQueue, [
          { tenantId: tenant, actionType: "send", runAt: t0, nextAttemptAt: t0 },
          { tenantId: tenant, actionType: "send", runAt: t0, nextAttemptAt: t0 },
        ]);
        await enqueue(tx, scheduledActionsQueue, [
          { tenantId: tenant, actionType: "send", runAt: t0, nextAttemptAt: t0 },
        ]);
        expect(heard).toEqual([]);
      });
      // A probe NOTIFY committed after the transaction: notifications arrive in commit order, so once the
      // probe is heard every wake-up of the transaction has been too.
      await db.execute(sql`select pg_notify(${scheduledActionsQueue.channel}, 'probe')`);
      await eventually(() => heard.includes("probe"), 5_000, "the probe");
      expect(heard.filter((p) => p !== "probe")).toHaveLength(1);
      await unlisten();
      const claimed = await claimBatch(db, scheduledActionsQueue, {
        workerId: "w",
        limit: 10,
        leaseMs: 1000,
        now: t0,
      });
      expect(claimed).toHaveLength(3);
      await expect(
        db.transaction(async (tx) => {
          await enqueue(tx, scheduledActionsQueue, [
            { tenantId: tenant, actionType: "send", runAt: t0, nextAttemptAt: t0 },
          ]);
          throw new Error("rolled back");
        }),
      ).rejects.toThrow("rolled back");
      expect(
        await claimBatch(db, scheduledActionsQueue, { workerId: "w", limit: 10, leaseMs: 1000, now: t0 }),
      ).toEqual([]);
    });

    it("releases unstarted claims without counting the attempt", async () => {
      await freshRows(2);
      const rows = await claimBatch(db, outboxQueue, {
        workerId: "stopping",
        limit: 2,
        leaseMs: 1000,
        now: t0,
      });
      expect(await releaseBatch(db, outboxQueue, "stopping", rows, t0)).toBe(2);
      expect(await count(db, "outbox", "status = 'pending' and attempts = 0 and locked_by is null")).toBe(2);
    });
  });
}

describe("backoff", () => {
  it("doubles from the base up to the cap, with jitter between half and the whole", () => {
    const options = { baseMs: 1000, maxMs: 60_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffCeilingMs(a, options))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000,
    ]);
    expect(backoffDelayMs(3, options, () => 0)).toBe(2000);
    expect(backoffDelayMs(3, options, () => 1)).toBe(4000);
    expect(backoffDelayMs(50, options, () => 1)).toBe(60_000);
  });
});
