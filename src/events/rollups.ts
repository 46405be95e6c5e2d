import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";

/**
 * The rollup projection: `event_rollups` counts each tenant's events per UTC hour, type and source, with
 * the times of the first and last of them (`event_rollups_daily` and `event_rollups_monthly` count per UTC day
 * and month), for every event up to the checkpoint in `event_rollup_checkpoint` and
 * none after it. It reads the log as `readLog` does, in (transaction id, position) order and only
 * transactions older than every running one, so the events up to the checkpoint are a fixed set: no
 * transaction can still commit one there. Totals and stats (totals.ts, stats.ts) add the events after the
 * checkpoint, which makes them exact however far the projection lags.
 */

/** How many events one projection step reads. @defaultValue 10000 */
export const defaultRollupBatch = 10_000;

/**
 * Count the next `batch` events of the log into the rollups (hourly, daily and monthly) and move the checkpoint past them, in one
 * statement (so in one transaction, whatever the executor). Projectors take turns on the checkpoint's row:
 * one that waited reads on from where the other left it. Returns how many events it read.
 */
export async function projectRollups(
  executor: Executor,
  batch: number = defaultRollupBatch,
): Promise<number> {
  const [row] = await query<{ read: number }>(
    executor,
    sql`with checkpoint as materialized (
        select transaction_id, position from event_rollup_checkpoint for update
      ),
      batch as materialized (
        select e.tenant_id, e.ts, e.event_type, e.source, e.transaction_id, e.position from events e
        where (e.transaction_id, e.position) > ((select transaction_id from checkpoint), (select position from checkpoint))
          and e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        order by e.transaction_id, e.position
        limit ${batch}
      ),
      counted as (
        insert into event_rollups as r (tenant_id, hour, event_type, source, count, first_at, last_at)
        select tenant_id, date_trunc('hour', ts, 'UTC'), event_type, source, count(*), min(ts), max(ts) from batch
        group by 1, 2, 3, 4
        on conflict (tenant_id, hour, event_type, source) do update set count = r.count + excluded.count,
          first_at = least(r.first_at, excluded.first_at), last_at = greatest(r.last_at, excluded.last_at)
      ),
      counted_daily as (
        insert into event_rollups_daily as r (tenant_id, day, event_type, source, count)
        select tenant_id, date_trunc('day', ts, 'UTC'), event_type, source, count(*) from batch
        group by 1, 2, 3, 4
        on conflict (tenant_id, day, event_type, source) do update set count = r.count + excluded.count
      ),
      counted_monthly as (
        insert into event_rollups_monthly as r (tenant_id, month, event_type, source, count)
        select tenant_id, date_trunc('month', ts, 'UTC'), event_type, source, count(*) from batch
        group by 1, 2, 3, 4
        on conflict (tenant_id, month, event_type, source) do update set count = r.count + excluded.count
      ),
      advanced as (
        update event_rollup_checkpoint c set transaction_id = last.transaction_id, position = last.position
        from (select transaction_id, position from batch order by transaction_id desc, position desc limit 1) last
        returning 1
      )
      select count(*)::int as read from batch`,
  );
  return Number(row!.read);
}

/**
 * Count the whole log into the rollups again: empty them (but for months archived and dropped by retention,
 * which the log no longer holds) and move the checkpoint back to the start (one
 * transaction, so readers see either the old rollups or none, exact both ways), then project in batches
 * until the projection has caught up. `onProgress(read, total)` after each batch; `total` is the number of
 * events when the rebuild began (events written meanwhile may take `read` past it).
 *
 * Rows are deleted rather than truncated: TRUNCATE is not MVCC-safe (a reader with an older snapshot would
 * see the rollups empty but the old checkpoint), and its ACCESS EXCLUSIVE lock, taken while a projection
 * statement holds its lock on the table and waits for the checkpoint row, would deadlock with it.
 */
export async function rebuildRollups(
  executor: Executor,
  onProgress?: (read: number, total: number) => void,
  { batch = defaultRollupBatch }: { batch?: number } = {},
): Promise<{ read: number }> {
  const [counted] = await query<{ total: number }>(
    executor,
    sql`select count(*)::float8 as total from events`,
  );
  const total = Number(counted!.total);
  await executor.transaction(async (tx) => {
    // Waits for a projection step in progress; the next one starts from the beginning.
    await tx.execute(sql`select 1 from event_rollup_checkpoint for update`);
    // Months archived and dropped (src/retention/) are no longer in the log: their counts are kept, the only
    // record of them totals and stats have.
    await tx.execute(sql`delete from event_rollups r where not exists (select 1 from archives a
      where a.table_name = 'events' and a.state = 'dropped' and r.hour >= a.month and r.hour < a.month + interval '1 month')`);
    await tx.execute(sql`delete from event_rollups_daily r where not exists (select 1 from archives a
      where a.table_name = 'events' and a.state = 'dropped' and r.day >= a.month and r.day < a.month + interval '1 month')`);
    await tx.execute(sql`delete from event_rollups_monthly r where not exists (select 1 from archives a
      where a.table_name = 'events' and a.state = 'dropped' and r.month >= a.month and r.month < a.month + interval '1 month')`);
    await tx.execute(sql`update event_rollup_checkpoint set transaction_id = '0', position = 0`);
  });
  onProgress?.(0, total);
  let read = 0;
  for (;;) {
    const step = await projectRollups(executor, batch);
    read += step;
    onProgress?.(read, total);
    if (step < batch) return { read };
  }
}

export interface RollupProjectionOptions {
  /** Events per step. @defaultValue 10000 */
  batch?: number;
  /** The pause after a step that found fewer than `batch` events (caught up). @defaultValue 500 */
  idleMs?: number;
  /** The pause after a step that failed (the database down, say), before the next try. @defaultValue 5000 */
  retryMs?: number;
  /** A step failed; the loop waits `retryMs` and goes on. */
  onError?: (error: unknown) => void;
}

/**
 * The projection's loop in a worker process: a step after another while the log is ahead, a pause once
 * caught up. Nothing is added to the write path: writers never wait for it.
 */
export class RollupProjection {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly executor: Executor,
    private readonly options: RollupProjectionOptions = {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Finish the step in progress (it commits or not as a whole) and stop. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
  }

  private async run() {
    const batch = this.options.batch ?? defaultRollupBatch;
    const idleMs = this.options.idleMs ?? 500;
    const retryMs = this.options.retryMs ?? 5000;
    while (this.running) {
      try {
        const read = await projectRollups(this.executor, batch);
        if (read < batch && this.running) await this.pause(idleMs);
      } catch (error) {
        this.options.onError?.(error);
        if (this.running) await this.pause(retryMs);
      }
    }
  }

  private pause(ms: number) {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }
}
