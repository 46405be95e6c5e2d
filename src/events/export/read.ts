import { type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../../db/client.js";
import { type EventFilter, filterCondition } from "../filter.js";
import type { ReadPosition } from "../query.js";

/** What every row of an export batch carries: the event's id and its time in epoch microseconds (the keyset). */
export interface BatchRow {
  id: string;
  ts_us: string;
}

/**
 * One batch of an export: the events of `filter` visible in `snapshot`, after `after`, by (time, id),
 * `limit` at most, each row the id and time plus `columns` (a select list over `events e`, the format's).
 * The same rule as `readEvents` (the snapshot bound, the keyset), with rows of the format's choosing:
 * `readEvents` builds its page as one JSON value, which costs the database about 10 µs per event (row to
 * JSON, jsonb out), several times what an export can afford per row.
 */
export async function readExportBatch<R extends BatchRow>(
  executor: Executor,
  filter: EventFilter,
  snapshot: string,
  after: ReadPosition | undefined,
  limit: number,
  columns: SQL,
): Promise<R[]> {
  const conditions = [
    filterCondition("e", filter),
    sql`pg_visible_in_snapshot(e.transaction_id, ${snapshot}::pg_snapshot)`,
  ];
  if (after !== undefined) {
    const at = sql`('epoch'::timestamptz + ${after.ts}::bigint * interval '1 microsecond')`;
    conditions.push(sql`e.ts >= ${at} and (e.ts, e.id) > (${at}, ${after.id}::uuid)`);
  }
  return query<R>(
    executor,
    sql`select e.id, (extract(epoch from e.ts) * 1000000)::bigint::text as ts_us, ${columns}
      from events e
      where ${sql.join(conditions, sql` and `)}
      order by e.ts, e.id
      limit ${limit}`,
  );
}
