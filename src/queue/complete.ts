import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { AckOptions, QueueDefinition } from "./definitions.js";
import { at, type Lease, leasesJson, relaxedCommit } from "./row.js";

/**
 * Complete a batch, but only rows whose lease is still this worker's (same worker, same attempt): a worker
 * whose lease expired and whose row was claimed again cannot complete it. Returns the ids completed.
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
  const rows = await query<{ id: string | number }>(
    executor,
    sql`update ${queue.table} t set status = ${queue.completeStatus ?? sql`'completed'`}, locked_by = null, locked_until = null,
      last_error = null, updated_at = ${now} ${queue.completeSet ? queue.completeSet(now) : sql``}
    from jsonb_to_recordset(${leasesJson(leases)}::jsonb) as c(id bigint, attempts int)
    where t.id = c.id and t.attempts = c.attempts and t.locked_by = ${workerId} and t.status = 'processing' ${options.relaxedCommit ? sql`and ${relaxedCommit}` : sql``}
    returning t.id`,
    { prepare: true },
  );
  return rows.map((r) => Number(r.id));
}
