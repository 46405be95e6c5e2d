import { getTableName, type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { decodeCursor, type Page, pageFrom } from "../domain/cursor.js";

/**
 * Newest-first keyset pagination over (timestamp, id), shared by every list that pages that way.
 *
 * The cursor names the last row shown; rows come after it when `(timestamp, id)` is smaller than that row's
 * own, read back from the table. PostgreSQL keeps microseconds and a JavaScript date only milliseconds, so
 * the cursor's time alone would skip the rest of a millisecond — every row but the first of a batch
 * inserted in one transaction. The cursor's time is only the fallback for a row deleted meanwhile.
 */
export function after(table: string, at: string, id: string, cursor: string | undefined): SQL | undefined {
  const position = decodeCursor(cursor);
  if (!position) return undefined;
  const t = sql.identifier(table);
  const [atColumn, idColumn] = [sql.identifier(at), sql.identifier(id)];
  const exact = sql`(select last.${atColumn} from ${t} last where last.${idColumn} = ${position.id}::uuid)`;
  return sql`(${t}.${atColumn}, ${t}.${idColumn}) < (coalesce(${exact}, ${position.at}::timestamptz), ${position.id}::uuid)`;
}

/** `after` for a Drizzle table's `created_at` and `id` columns. */
export const createdBefore = (createdAt: PgColumn, id: PgColumn, cursor: string | undefined) =>
  after(getTableName(createdAt.table), createdAt.name, id.name, cursor);

export function pageOf<T extends { createdAt: Date; id: string }>(rows: T[], limit: number): Page<T> {
  return pageFrom(rows, limit, (row) => ({ at: row.createdAt.toISOString(), id: row.id }));
}
