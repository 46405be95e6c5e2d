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

/** A batch as read: how many events, the keyset to continue from when it is full, and its content. */
export interface ExportBatch<T> {
  rows: number;
  keyset: string | null;
  data: T;
}

/**
 * The events of a batch: those of `filter` visible in `snapshot`, after `after`, by (time, id), `limit` at
 * most. The same rule as `readEvents` (the snapshot bound, the keyset), with rows of the format's choosing:
 * `readEvents` builds its page as one JSON value, which costs the database about 10 µs per event (row to
 * JSON, jsonb out), several times what an export can afford per row.
 */
function batchSql(
  filter: EventFilter,
  snapshot: string,
  after: ReadPosition | undefined,
  limit: number,
  columns: SQL,
) {
  const conditions = [
    filterCondition("e", filter),
    sql`pg_visible_in_snapshot(e.transaction_id, ${snapshot}::pg_snapshot)`,
  ];
  if (after !== undefined) {
    const at = sql`('epoch'::timestamptz + ${after.ts}::bigint * interval '1 microsecond')`;
    conditions.push(sql`e.ts >= ${at} and (e.ts, e.id) > (${at}, ${after.id}::uuid)`);
  }
  return sql`select ${columns}, case when row_number() over (order by e.ts, e.id) = ${limit}
      then (extract(epoch from e.ts) * 1000000)::bigint::text || ' ' || e.id end as keyset
    from events e
    where ${sql.join(conditions, sql` and `)}
    order by e.ts, e.id
    limit ${limit}`;
}

/** A batch as rows of `columns` (a select list over `events e`). */
export async function readExportRows<R extends BatchRow>(
  executor: Executor,
  filter: EventFilter,
  snapshot: string,
  after: ReadPosition | undefined,
  limit: number,
  columns: SQL,
): Promise<ExportBatch<R[]>> {
  const rows = await query<R>(executor, batchSql(filter, snapshot, after, limit, columns));
  return {
    rows: rows.length,
    keyset: rows.length === limit ? (rows.at(-1)?.keyset ?? null) : null,
    data: rows,
  };
}

/**
 * A batch as one text: each event's `line` (an SQL text expression over `events e`), joined in order by the
 * database. One value per batch instead of an object and a string per event: the exporting process then
 * does little more than hash and write bytes.
 */
export async function readExportText(
  executor: Executor,
  filter: EventFilter,
  snapshot: string,
  after: ReadPosition | undefined,
  limit: number,
  line: SQL,
): Promise<ExportBatch<string>> {
  const [row] = await query<{ text: string; rows: number; keyset: string | null }>(
    executor,
    sql`select coalesce(string_agg(b.line, '' order by b.ts, b.id), '') as text, count(*)::int as rows,
        max(b.keyset) as keyset
      from (${batchSql(filter, snapshot, after, limit, sql`${line} as line, e.ts, e.id`)}) b`,
  );
  return { rows: Number(row!.rows), keyset: row!.keyset, data: row!.text };
}
