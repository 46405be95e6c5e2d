import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

    async function freshRows(n: number) {
      await db.execute(sql`delete from outbox`);
      await writeEvents(
        db,
        Array.from({ length: n }, (_, i) => ({
          tenantId: tenant,
          eventType: "q.test",
          source: "system" as const,
          payload: { i },
        })),
      );
      // Make them due at t0 exactly.
      await db.execute(sql`update outbox set next_attempt_at = ${t0.toISOString()}::timestamptz`);
    }

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
      expect(await completeBatch(db, outboxQueue, "new", [theirs!], at(1500))).toEqual([mine!.id]);
      expect(
        await count(db, "outbox", `id = ${mine!.id} and status = 'completed' and delivered_at is not null`),
      ).toBe(1);
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
