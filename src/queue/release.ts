import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { QueueDefinition } from "./definitions.js";
import { at, type Lease, leasesJson } from "./row.js";

/** Give back claimed rows that were never started (on shutdown): pending again, the attempt uncounted. */
export async function releaseBatch(
  executor: Executor,
  queue: QueueDefinition,
  workerId: string,
  leases: Lease[],
  nowDate: Date,
): Promise<number> {
  if (leases.length === 0) return 0;
  const now = at(nowDate);
  const rows = await query(
    executor,
    sql`update ${queue.table} t set status = 'pending', attempts = t.attempts - 1, locked_by = null,
      locked_until = null, next_attempt_at = ${now}, updated_at = ${now}
    from jsonb_to_recordset(${leasesJson(leases)}::jsonb) as c(id bigint, attempts int)
    where t.id = c.id and t.attempts = c.attempts and t.locked_by = ${workerId} and t.status = 'processing'
    returning t.id`,
    { prepare: true },
  );
  return rows.length;
}
