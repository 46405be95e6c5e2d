import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { AckOptions, QueueDefinition } from "./definitions.js";
import { at, type Lease, leasesJson, relaxedCommit } from "./row.js";

/**
 * Complete a batch, but only rows whose lease is still this worker's (same worker, same attempt): a worker
 * whose lease expired and whose row was claimed again cannot complete it. A queue's completed rows are kept
 * as `completed` (or sent back to pending, `completeStatus`) or deleted (`completeDeletes`); its
 * `onComplete` runs over them in the same statement. Returns the ids completed.
 */
export async function completeBatch(
  executor: Executor,
  queue: QueueDefinition,
  workerId: string,
  leases: Lease[],
  nowDate: Date,
  options: AckOptions = {},
): Promise<number[]> {
  if (leases.length === 0) return [];
  const now = at(nowDate);
  const input = sql`jsonb_to_recordset(${leasesJson(leases)}::jsonb) as c(id bigint, attempts int)`;
  const leased = sql`t.id = c.id and t.attempts = c.attempts and t.locked_by = ${workerId} and t.status = 'processing' ${options.relaxedCommit ? sql`and ${relaxedCommit}` : sql``}`;
  const change = queue.completeDeletes
    ? sql`delete from ${queue.table} t using ${input} where ${leased}`
    : sql`update ${queue.table} t set status = ${queue.completeStatus ?? sql`'completed'`}, locked_by = null, locked_until = null,
      last_error = null, updated_at = ${now} ${queue.completeSet ? queue.completeSet(now) : sql``}
    from ${input} where ${leased}`;
  const rows = await query<{ id: string | number }>(
    executor,
    queue.onComplete
      ? sql`with completed as (${change} returning t.*), on_complete as (${queue.onComplete(sql`completed`, now)})
        select id from completed`
      : sql`${change} returning t.id`,
    { prepare: true },
  );
  return rows.map((r) => Number(r.id));
}
