import { type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../../db/client.js";
import { type EventFilter, filterCondition } from "../filter.js";
import type { ReadPosition } from "../query.js";

/**
 * What every row of an export batch carries besides the format's columns: on the batch's last row when the
 * batch is full, where the next one starts (`<time in epoch microseconds> <id>`), else null (no text made
 * for the rows that do not need it).
 */
export interface BatchRow {
  keyset: string | null;
}

/**
 * One batch of an export: the events of `filter` visible in `snapshot`, after `after`, by (time, id),
 * `limit` at most, each row `columns` (a select list over `events e`, the format's) and the keyset.
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
    sql`select ${columns}, case when row_number() over (order by e.ts, e.id) = ${limit}
        then (extract(epoch from e.ts) * 1000000)::bigint::text || ' ' || e.id end as keyset
      from events e
      where ${sql.join(conditions, sql` and `)}
      order by e.ts, e.id
      limit ${limit}`,
  );
}
