import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import type { Clock } from "../src/domain/clock.js";
import { writeEvents } from "../src/events/write.js";
import { claimBatch } from "../src/queue/claim.js";
import { completeBatch } from "../src/queue/complete.js";
import { scheduledActionsQueue } from "../src/queue/definitions.js";
import { reapExpired } from "../src/queue/reap.js";
import { cancelScheduledAction, getScheduledAction, scheduleAction } from "../src/scheduler/actions.js";
import { createSchedulerMetrics, registerSchedulerDue } from "../src/scheduler/metrics.js";
import { createSchedulerWorker } from "../src/scheduler/processor.js";
import { type ScheduledRun, scheduledActionRegistry } from "../src/scheduler/registry.js";
import { runSlots } from "../src/scheduler/run.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { eventually } from "./support/wait.js";

/** A clock the test sets: the scheduler's only idea of now (the claim's due check included). */
class ManualClock implements Clock {
  constructor(private at: Date) {}
  now() {
    return new Date(this.at);
  }
  set(at: string | Date) {
    this.at = new Date(at);
  }
  advance(ms: number) {
    this.at = new Date(this.at.getTime() + ms);
  }
}

const minute = 60_000;

/**
 * The scheduler on both backends, driven by a clock the test moves (nothing sleeps until a time): `every`,
 * cron in a time zone across both DST changes, the `missed` policies after downtime, cancellation, retries
 * to a dead action, and a slot that fails leaving no effect behind.
 */
describe.each(backends())("scheduler on %s", (backend) => {
  let t: TestDatabase;
  let tenantId: string;
  const db = () => t.database.db;
  const clock = new ManualClock(new Date("2026-01-05T10:00:00Z"));
  let failing = false;
  const registry = scheduledActionRegistry({
    /** Emits an event keyed by slot, unless the test makes it fail (after the write: it must roll back). */
    "test.record": async (tx, runs: readonly ScheduledRun[]) => {
      await writeEvents(
        tx,
        runs.map((run) => ({
          tenantId: run.tenantId,
          eventType: "test.recorded",
          source: "system" as const,
          eventKey: `scheduled:${run.actionId}:${run.slot.toISOString()}`,
        })),
      );
      if (failing) throw new Error("the handler failed on purpose");
    },
  });

  beforeAll(async () => {
    t = await createTestDatabase(backend);
    tenantId = await makeTenant(db());
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** Run a worker on the clock's current time until nothing due is left (pending due or in flight). */
  const metricsRegistry = new Registry();
  const metrics = createSchedulerMetrics(metricsRegistry);
  async function runDue() {
    const worker = createSchedulerWorker({
      db: db(),
      registry,
      clock,
      metrics,
      pollIntervalMs: 20,
      workerId: "w1",
    });
    await worker.start();
    const now = clock.now().toISOString();
    await eventually(
      async () =>
        (await count(
          db(),
          "scheduled_actions",
          `status = 'processing' or (status = 'pending' and next_attempt_at <= '${now}')`,
        )) === 0,
      10_000,
      "due actions run",
    );
    await worker.stop();
  }

  /** The events emitted by an action, oldest first: its slots as they ran. */
  const emitted = (actionId: string) =>
    query<{ event_key: string; event_type: string }>(
      db(),
      sql`select event_key, event_type from events where tenant_id = ${tenantId} and event_key like ${`scheduled:${actionId}%`}
        order by event_key`,
    );

  const emit = (extra: Record<string, unknown>) =>
    scheduleAction(
      db(),
      {
        tenantId,
        action: "emit_event",
        payload: { event_type: "reminder.due", source: "cron", payload: { n: 1 } },
        ...extra,
      },
      { registry, clock },
    );

  it("runs a one-off at its time, once, and appends its event", async () => {
    clock.set("2026-01-05T10:00:00Z");
    const a = await emit({ runAt: "2026-01-05T10:05:00Z" });
    expect(a).toMatchObject({ state: "scheduled", next_run_at: "2026-01-05T10:05:00.000Z" });
    clock.set("2026-01-05T10:04:59.999Z");
    await runDue();
    expect(await emitted(a.id)).toEqual([]);
    clock.set("2026-01-05T10:05:00Z");
    await runDue();
    await runDue();
    expect(await emitted(a.id)).toEqual([{ event_key: `scheduled:${a.id}`, event_type: "reminder.due" }]);
    expect(await getScheduledAction(db(), tenantId, a.id)).toMatchObject({
      state: "completed",
      next_run_at: null,
      attempts: 1,
    });
    registerSchedulerDue(metricsRegistry, db());
    const text = await metricsRegistry.metrics();
    expect(text).toMatch(/herald_scheduler_runs_total\{action="emit_event",outcome="ran"\} 1/);
    expect(text).toMatch(/herald_scheduler_lag_seconds_count 1/);
    expect(text).toMatch(/herald_scheduler_due \d+/);
  });

  it("repeats `every` on its slots, each slot once", async () => {
    clock.set("2026-01-06T10:00:00Z");
    const a = await emit({ every: "PT5M" });
    expect(a.next_run_at).toBe("2026-01-06T10:05:00.000Z");
    for (const at of ["10:05:00", "10:07:00", "10:10:00.5", "10:10:30", "10:15:00"]) {
      clock.set(`2026-01-06T${at}Z`);
      await runDue();
    }
    expect((await emitted(a.id)).map((e) => e.event_key)).toEqual(
      ["10:05", "10:10", "10:15"].map((s) => `scheduled:${a.id}:2026-01-06T${s}:00.000Z`),
    );
    expect(await getScheduledAction(db(), tenantId, a.id)).toMatchObject({
      state: "scheduled",
      run_at: "2026-01-06T10:20:00.000Z",
      next_run_at: "2026-01-06T10:20:00.000Z",
      attempts: 0,
      last_run_at: "2026-01-06T10:15:00.000Z",
    });
    // Seconds work as well as durations.
    expect((await emit({ every: 90 })).next_run_at).toBe("2026-01-06T10:16:30.000Z");
  });

  it.each([
    [
      "spring forward: 02:30 does not exist on 29 March, runs at 03:00",
      "2026-03-27T12:00:00Z",
      ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
    ],
    [
      "fall back: 02:30 happens twice on 25 October, runs once",
      "2026-10-23T12:00:00Z",
      ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
    ],
  ])("runs a daily 02:30 cron in Europe/Berlin across DST (%s)", async (_, created, slots) => {
    clock.set(created);
    const a = await emit({ cron: "30 2 * * *", timeZone: "Europe/Berlin" });
    expect(a).toMatchObject({ next_run_at: slots[0], cron: "30 2 * * *", time_zone: "Europe/Berlin" });
    for (const slot of slots) {
      clock.set(new Date(Date.parse(slot) - 1));
      await runDue();
      clock.set(slot);
      await runDue();
      // Half an hour later (in the repeated hour of October too), nothing more.
      clock.set(new Date(Date.parse(slot) + 30 * minute));
      await runDue();
      clock.set(new Date(Date.parse(slot) + 60 * minute));
      await runDue();
    }
    expect((await emitted(a.id)).map((e) => e.event_key)).toEqual(slots.map((s) => `scheduled:${a.id}:${s}`));
  });

  it("after downtime, `skip` runs none of the missed slots and `run_once` runs one, then both go on", async () => {
    clock.set("2026-01-07T10:00:00Z");
    const skip = await emit({ every: "PT1M", missed: "skip" });
    const once = await emit({ every: "PT1M", missed: "run_once" });
    // Down from 10:00 to 10:10:30: ten slots missed.
    clock.set("2026-01-07T10:10:30Z");
    await runDue();
    expect(await emitted(skip.id)).toEqual([]);
    expect((await emitted(once.id)).map((e) => e.event_key)).toEqual([
      `scheduled:${once.id}:2026-01-07T10:01:00.000Z`,
    ]);
    for (const a of [skip, once])
      expect(await getScheduledAction(db(), tenantId, a.id)).toMatchObject({
        state: "scheduled",
        next_run_at: "2026-01-07T10:11:00.000Z",
      });
    // A slot that is merely late (its next one not due yet) runs under either policy.
    clock.set("2026-01-07T10:11:40Z");
    await runDue();
    expect((await emitted(skip.id)).length).toBe(1);
    expect((await emitted(once.id)).length).toBe(2);
  });

  it("cancels: a repeating action runs no more; a one-off that ran is a conflict; another tenant's is not found", async () => {
    clock.set("2026-01-08T10:00:00Z");
    const repeating = await emit({ every: "PT1M" });
    clock.set("2026-01-08T10:01:00Z");
    await runDue();
    await cancelScheduledAction(db(), tenantId, repeating.id, clock);
    await cancelScheduledAction(db(), tenantId, repeating.id, clock);
    clock.set("2026-01-08T10:05:00Z");
    await runDue();
    expect((await emitted(repeating.id)).length).toBe(1);
    expect(await getScheduledAction(db(), tenantId, repeating.id)).toMatchObject({
      state: "cancelled",
      next_run_at: null,
    });

    const oneOff = await emit({ runAt: "2026-01-08T10:06:00Z" });
    const waiting = await emit({ runAt: "2026-01-08T10:07:00Z" });
    clock.set("2026-01-08T10:06:00Z");
    await runDue();
    await expect(cancelScheduledAction(db(), tenantId, oneOff.id, clock)).rejects.toMatchObject({
      code: "conflict",
    });
    await cancelScheduledAction(db(), tenantId, waiting.id, clock);
    clock.set("2026-01-08T10:08:00Z");
    await runDue();
    expect(await emitted(waiting.id)).toEqual([]);
    const other = await makeTenant(db());
    await expect(cancelScheduledAction(db(), other, waiting.id, clock)).rejects.toMatchObject({
      code: "not_found",
    });
    expect(await getScheduledAction(db(), other, waiting.id)).toBeUndefined();
  });

  it("retries a failing slot with back-off, leaving nothing of the failed tries, then the action is dead", async () => {
    clock.set("2026-01-09T10:00:00Z");
    const a = await scheduleAction(
      db(),
      { tenantId, action: "test.record", every: "PT1H" },
      { registry, clock, maxAttempts: 2 },
    );
    failing = true;
    try {
      clock.set("2026-01-09T11:00:00Z");
      await runDue();
      const retrying = await getScheduledAction(db(), tenantId, a.id);
      expect(retrying).toMatchObject({ state: "retrying", attempts: 1, max_attempts: 2 });
      expect(retrying?.last_error).toMatch(/failed on purpose/);
      expect(Date.parse(retrying!.next_run_at!)).toBeGreaterThan(Date.parse("2026-01-09T11:00:00Z"));
      clock.set("2026-01-09T11:30:00Z");
      await runDue();
      expect(await getScheduledAction(db(), tenantId, a.id)).toMatchObject({ state: "dead", attempts: 2 });
      expect(await emitted(a.id)).toEqual([]);
    } finally {
      failing = false;
    }
  });

  it("lets no late worker commit a slot: its lease token never comes back, on this slot or a later one", async () => {
    // Before the other tests' actions: none of them is due.
    clock.set("2026-01-02T10:00:00Z");
    const a = await emit({ every: "PT1M" });
    const claim = (workerId: string) =>
      claimBatch(db(), scheduledActionsQueue, { workerId, limit: 10, leaseMs: 1000, now: clock.now() });
    /** A worker's whole slot: the handler, then the completion, in one transaction. */
    const runSlot = (workerId: string, rows: Awaited<ReturnType<typeof claim>>) =>
      db().transaction(async (tx) => {
        await runSlots(tx, rows, registry, clock);
        const done = await completeBatch(tx, scheduledActionsQueue, workerId, rows, clock.now());
        if (done.length !== rows.length) throw new Error("lease lost");
      });
    clock.set("2026-01-02T10:01:00Z");
    const late = await claim("late");
    expect(late).toHaveLength(1);
    // "late" stalls past its lease; the row is reaped and taken by "quick", which runs the slot.
    clock.advance(2000);
    expect(await reapExpired(db(), scheduledActionsQueue, clock.now())).toBe(1);
    const quick = await claim("quick");
    await runSlot("quick", quick);
    // The next slot comes and "late" claims it: a new attempt number, so its stale claim of the first slot
    // still matches nothing — neither before nor after this claim is done.
    clock.set("2026-01-02T10:02:00Z");
    await expect(runSlot("late", late)).rejects.toThrow(/lease lost/);
    const again = await claim("late");
    expect(again[0]!.attempts).toBeGreaterThan(late[0]!.attempts);
    await expect(runSlot("late", late)).rejects.toThrow(/lease lost/);
    await runSlot("late", again);
    expect((await emitted(a.id)).map((e) => e.event_key)).toEqual([
      `scheduled:${a.id}:2026-01-02T10:01:00.000Z`,
      `scheduled:${a.id}:2026-01-02T10:02:00.000Z`,
    ]);
    expect(await getScheduledAction(db(), tenantId, a.id)).toMatchObject({
      state: "scheduled",
      next_run_at: "2026-01-02T10:03:00.000Z",
      attempts: 0,
    });
  });

  it("refuses bad schedules naming the field", async () => {
    clock.set("2026-01-10T10:00:00Z");
    const cases: [Record<string, unknown>, string][] = [
      [{ cron: "61 * * * *" }, "/cron"],
      [{ cron: "* * * * * *" }, "/cron"],
      [{ cron: "0 3 * * *", timeZone: "Mars/Olympus" }, "/time_zone"],
      [{ every: "P1M" }, "/every"],
      [{ every: "PT0S" }, "/every"],
      [{ runAt: "2026-01-10T08:00:00Z" }, "/run_at"],
      [{ runAt: "2026-01-10T10:00:00Z", every: "PT5M" }, ""],
      [{}, ""],
      [{ runAt: "2026-01-10T10:00:00Z", action: "no_such_action" }, "/action"],
    ];
    for (const [extra, path] of cases) {
      await expect(emit(extra), JSON.stringify(extra)).rejects.toMatchObject({
        code: "validation_failed",
        errors: expect.arrayContaining([expect.objectContaining({ path })]),
      });
    }
  });
});
