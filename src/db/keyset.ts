import { and, eq, lt, or, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { decodeCursor, type Page, pageFrom } from "../domain/cursor.js";

/**
 * Newest-first keyset pagination over (created_at, id), shared by every list that pages that way: the
 * condition for rows after a cursor, and the page (with the next cursor) from `limit + 1` fetched rows.
 */
export function createdBefore(
  createdAt: PgColumn,
  id: PgColumn,
  cursor: string | undefined,
): SQL | undefined {
  const after = decodeCursor(cursor);
  if (!after) return undefined;
  const at = new Date(after.at);
  return or(lt(createdAt, at), and(eq(createdAt, at), lt(id, after.id)));
}

export function pageOf<T extends { createdAt: Date; id: string }>(rows: T[], limit: number): Page<T> {
  return pageFrom(rows, limit, (row) => ({ at: row.createdAt.toISOString(), id: row.id }));
}
