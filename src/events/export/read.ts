import { type SQL, sql } from "drizzle-orm";
import { type Executor, query, queryBytes } from "../../db/client.js";
import { type EventFilter, filterCondition } from "../filter.js";
import type { ReadPosition } from "../query.js";

/** What every row of an export batch carries besides the format's columns: its keyset (time in epoch µs, id). */
export interface BatchRow {
  keyset_ts: string;
  keyset_id: string;
}

/** A batch as read: how many events, the keyset to continue from when it is full, and its content. */
export interface ExportBatch<T> {
  rows: number;
  /** Where the next batch starts (`<time in epoch microseconds> <id>` of the last event), when this one is full. */
  keyset: string | null;
  data: T;
}

/**
 * The events of a batch: those of `filter` visible in `snapshot`, after `after`, by (time, id), `limit` at
 * most, each with its keyset. The same rule as `readEvents` (the snapshot bound, the keyset), with rows of the
 * format's choosing: `readEvents` builds its page as one JSON value, which costs the database about 10 µs per
 * event (row to JSON, jsonb out), several times what an export can afford per row. Ordered as the
 * (tenant, time) index is (`nulls first` forwards; `ts` is never null), so only ties are sorted by id.
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
  return sql`select ${columns}, (extract(epoch from e.ts) * 1000000)::bigint::text as keyset_ts,
      e.id as keyset_id
    from events e
    where ${sql.join(conditions, sql` and `)}
    order by e.ts nulls first, e.id
    limit ${limit}`;
}

/** Where the batch after `last` starts, when a batch of `limit` ended with it (else there is no more). */
const keysetAfter = (count: number, limit: number, last: { ts: string; id: string } | undefined) =>
  count === limit && last !== undefined ? `${last.ts} ${last.id}` : null;

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
  const last = rows.at(-1);
  return {
    rows: rows.length,
    keyset: keysetAfter(rows.length, limit, last && { ts: last.keyset_ts, id: String(last.keyset_id) }),
    data: rows,
  };
}

/**
 * A batch as one text: each event's `line` (an SQL text expression over `events e`), in order, as UTF-8
 * bytes joined here (`queryBytes`: never a string in between, and no aggregate sorting the lines again in the
 * database). The exporting process then does little more than hash and write bytes.
 */
export async function readExportText(
  executor: Executor,
  filter: EventFilter,
  snapshot: string,
  after: ReadPosition | undefined,
  limit: number,
  line: SQL,
): Promise<ExportBatch<Buffer>> {
  // Prepared: a batch's statement differs from the last one's only in its values (planned once per connection).
  const rows = await queryBytes(executor, batchSql(filter, snapshot, after, limit, sql`${line} as line`), {
    prepare: true,
  });
  const last = rows.at(-1);
  return {
    rows: rows.length,
    keyset: keysetAfter(rows.length, limit, last && { ts: last[1]!.toString(), id: last[2]!.toString() }),
    data: Buffer.concat(rows.map((row) => row[0]!)),
  };
}

/** A text batch's bytes as they were read (none for an empty batch): what the text formats write. */
export const textBatch = (data: Buffer | BatchRow[]): Buffer | undefined => {
  const bytes = data as Buffer;
  return bytes.length === 0 ? undefined : bytes;
};
