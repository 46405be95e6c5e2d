import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { storedEventColumns, toStoredEvent } from "./columns.js";
import type { StoredEvent } from "./types.js";

/** Where a position-based reader stands: the last (transaction id, position) it has seen. */
export interface LogPosition {
  transactionId: string;
  position: number;
}

export const logStart: LogPosition = { transactionId: "0", position: 0 };

/**
 * Read the log in commit-safe order after `after`. Only transactions older than every transaction still
 * running (`pg_snapshot_xmin`) are read, so a reader never passes an event that commits later with a lower
 * position: it waits for it instead. Order and checkpoint are (transaction id, position), never position
 * alone.
 */
export async function readLog(
  executor: Executor,
  after: LogPosition,
  limit: number,
  tenantId?: string,
): Promise<{ events: StoredEvent[]; next: LogPosition }> {
  const rows = await query(
    executor,
    sql`select ${storedEventColumns("e")} from events e
    where (e.transaction_id, e.position) > (${after.transactionId}::xid8, ${after.position})
      and e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      ${tenantId ? sql`and e.tenant_id = ${tenantId}` : sql``}
    order by e.transaction_id, e.position
    limit ${limit}`,
  );
  const events = rows.map(toStoredEvent);
  const last = events.at(-1);
  return { events, next: last ? { transactionId: last.transaction_id, position: last.position } : after };
}

/** One event of a tenant's log by its id, or undefined. */
export async function getEvent(
  executor: Executor,
  tenantId: string,
  id: string,
): Promise<StoredEvent | undefined> {
  const rows = await query(
    executor,
    sql`select ${storedEventColumns("e")} from events e where e.id = ${id} and e.tenant_id = ${tenantId}`,
  );
  return rows[0] ? toStoredEvent(rows[0]) : undefined;
}
