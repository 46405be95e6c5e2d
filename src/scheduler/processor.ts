import type { Database, Db } from "../db/client.js";
import type { BackoffOptions } from "../domain/backoff.js";
import { type Clock, systemClock } from "../domain/clock.js";
import { scheduledActionsQueue } from "../queue/definitions.js";
import { Worker } from "../queue/worker.js";
import type { SchedulerMetrics } from "./metrics.js";
import { builtInActions, type ScheduledActionRegistry } from "./registry.js";
import { runSlots, type SlotOutcome } from "./run.js";

export interface SchedulerWorkerOptions {
  db: Db;
  listen?: Database["listen"];
  /** The actions this worker runs. @defaultValue the built-in ones (`emit_event`) */
  registry?: ScheduledActionRegistry;
  metrics?: SchedulerMetrics;
  /** @defaultValue 100 */
  batchSize?: number;
  /** Transactions running slots at once. @defaultValue 4 */
  concurrency?: number;
  /** Slots run in one transaction at most. @defaultValue 50 */
  chunkSize?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  backoff?: BackoffOptions;
  workerId?: string;
  /** Decides when a slot is due (the claim's `now`), missed, and what comes next. */
  clock?: Clock;
}

/**
 * The scheduler: claims due scheduled actions and runs them (`runSlots`), a chunk per transaction whose
 * commit also completes them — or, for a repeating action, moves its row to its next slot. A failure rolls
 * the slot back and retries it with back-off; after its last attempt the action is dead; a worker that dies
 * mid-way leaves a lease that expires and is reaped — all the claim engine's.
 */
export function createSchedulerWorker(options: SchedulerWorkerOptions): Worker {
  const { metrics } = options;
  const registry = options.registry ?? builtInActions;
  const clock = options.clock ?? systemClock;
  const outcomes = new WeakMap<object, SlotOutcome[]>();
  const worker = new Worker({
    queue: scheduledActionsQueue,
    db: options.db,
    listen: options.listen,
    batchSize: options.batchSize ?? 100,
    concurrency: options.concurrency ?? 4,
    leaseMs: options.leaseMs,
    pollIntervalMs: options.pollIntervalMs,
    backoff: options.backoff,
    workerId: options.workerId,
    clock,
    handler: {
      mode: "transactional",
      chunkSize: options.chunkSize ?? 50,
      handle: async (tx, rows) => {
        const done = await runSlots(tx, rows, registry, clock);
        if (metrics) outcomes.set(rows, done);
      },
    },
  });
  if (metrics) {
    worker.on("job:completed", (rows) => {
      for (const { run, ran, startedAt } of outcomes.get(rows) ?? []) {
        metrics.runs.inc({ action: run.action, outcome: ran ? "ran" : "skipped" });
        if (ran) metrics.lag.observe(Math.max(0, startedAt.getTime() - run.slot.getTime()) / 1000);
      }
    });
    worker.on("job:failed", () => metrics.errors.inc());
    worker.on("job:dead", () => {
      metrics.errors.inc();
      metrics.dead.inc();
    });
  }
  return worker;
}
