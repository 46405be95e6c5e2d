import { type SQL, sql } from "drizzle-orm";

/** A timestamptz as the drivers hand raw results back ("2026-11-22 23:17:03.1+00") or as a Date, in ms. */
export function parseDbTimestamp(value: unknown): Date {
  if (value instanceof Date) return value;
  return new Date(
    String(value)
      .replace(" ", "T")
      .replace(/([+-]\d\d)$/, "$1:00"),
  );
}

/**
 * SQL text for a timestamptz expression as epoch milliseconds (float8): cheaper to select than formatted
 * text, and exact for the millisecond precision the API shows.
 */
export const epochMs = (expression: string) => `floor(extract(epoch from ${expression}) * 1000)::float8`;

/** RFC 3339 in UTC with milliseconds, as the API shows times, as a `to_char` format. */
const isoFormat = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** SQL text for a timestamptz expression as RFC 3339 text (`isoFormat`). */
export const isoText = (expression: string) => `to_char(${expression} at time zone 'UTC', ${isoFormat})`;

/** `isoText` of a Drizzle SQL expression. */
export const isoTextSql = (expression: SQL) =>
  sql`to_char(${expression} at time zone 'UTC', ${sql.raw(isoFormat)})`;
