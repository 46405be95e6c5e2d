import type { Db } from "../db/client.js";
import { ensureMonthsAhead, type TableMonths } from "../db/partitionUpkeep.js";
import { type Clock, systemClock } from "../domain/clock.js";

/**
 * The built-in system action `maintain_partitions`: keeps the partitions of every monthly-partitioned table
 * made from the previous month to `monthsAhead` after the current one (HERALD_PARTITIONS_AHEAD), so no
 * writer has to make the month it writes into.
 *
 * It is not a row of `scheduled_actions`: a row there belongs to a tenant (its `tenant_id` references
 * `tenants`, and row-level security scopes it), and a system tenant would show in the admin API, could be
 * deleted with its actions, and would let a tenant's action name stand for database-wide DDL. Nor does it
 * need what a row gives — one run per slot across processes: a run is idempotent (a month already there is
 * skipped, creators take turns on an advisory lock) and costs one catalog read per table when nothing is
 * missing. So every worker process runs it on a timer: at start, then every `intervalMs`.
 */
export const maintainPartitionsAction = "maintain_partitions";

export interface PartitionUpkeepOptions {
  db: Db;
  /** Months after the current one (HERALD_PARTITIONS_AHEAD). */
  monthsAhead: number;
  /** @defaultValue one hour */
  intervalMs?: number;
  clock?: Clock;
  /** Told of each run's outcome (made may be empty). */
  onRun?: (made: TableMonths[]) => void;
  onError?: (error: unknown) => void;
}

export interface PartitionUpkeep {
  /** Run once now (after a run in progress, if any). */
  runNow(): Promise<TableMonths[]>;
  /** Stop the timer and wait for a run in progress. */
  stop(): Promise<void>;
}

/** Start `maintain_partitions` in this process: a run now, then one every `intervalMs` (timer unref'd). */
export function startPartitionUpkeep(options: PartitionUpkeepOptions): PartitionUpkeep {
  const { db, monthsAhead, clock = systemClock } = options;
  let running: Promise<TableMonths[]> = Promise.resolve([]);
  const runNow = () => {
    running = running
      .catch(() => [])
      .then(() => ensureMonthsAhead(db, { months: monthsAhead, now: clock.now() }))
      .then((made) => {
        options.onRun?.(made);
        return made;
      });
    return running;
  };
  const tick = () => {
    runNow().catch((error: unknown) => options.onError?.(error));
  };
  tick();
  const timer = setInterval(tick, options.intervalMs ?? 3600_000);
  timer.unref();
  return {
    runNow,
    async stop() {
      clearInterval(timer);
      await running.catch(() => undefined);
    },
  };
}
