import { sql } from "drizzle-orm";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { type Db, query } from "../db/client.js";
import { perRegistry } from "../queue/metrics.js";

/**
 * Scheduler series (one set per registry): slots run and skipped by action, failed attempts, dead actions,
 * the lag from a slot's time to its start, and — read on scrape — how many actions are due and waiting.
 * Queue depth (pending, in flight) comes from the queue gauges (`queue/metrics.ts`).
 */
export const createSchedulerMetrics = perRegistry(create);

function create(registry: Registry) {
  const registers = [registry];
  return {
    runs: new Counter({
      name: "herald_scheduler_runs_total",
      help: "Slots of scheduled actions, by action and outcome (ran; skipped: missed under the skip policy)",
      labelNames: ["action", "outcome"],
      registers,
    }),
    errors: new Counter({
      name: "herald_scheduler_errors_total",
      help: "Attempts of scheduled actions that failed",
      registers,
    }),
    dead: new Counter({
      name: "herald_scheduler_dead_total",
      help: "Scheduled actions that failed their last attempt",
      registers,
    }),
    lag: new Histogram({
      name: "herald_scheduler_lag_seconds",
      help: "A slot's time (run_at) → its start",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    }),
  };
}

export type SchedulerMetrics = ReturnType<typeof createSchedulerMetrics>;

const withDue = new WeakSet<Registry>();

/** `herald_scheduler_due`: pending actions whose time has come, read on scrape through the claim index. */
export function registerSchedulerDue(registry: Registry, db: Db): void {
  if (withDue.has(registry)) return;
  withDue.add(registry);
  new Gauge({
    name: "herald_scheduler_due",
    help: "Scheduled actions due and not yet started",
    registers: [registry],
    async collect() {
      const rows = await query<{ due: number }>(
        db,
        sql`select count(*)::int as due from scheduled_actions where status = 'pending' and next_attempt_at <= now()`,
      ).catch(() => undefined);
      this.reset();
      if (rows?.[0]) this.set(rows[0].due);
    },
  });
}
