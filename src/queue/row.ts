import { sql } from "drizzle-orm";

/** A claimed queue row as the engine returns it: the table's columns (snake_case) with a numeric id. */
export interface QueueRow {
  id: number;
  attempts: number;
  max_attempts: number;
  [column: string]: unknown;
}

/** The lease token of a claim: a row may be completed or failed only while both still match. */
export interface Lease {
  id: number;
  attempts: number;
}

export const toQueueRow = (raw: Record<string, unknown>): QueueRow => ({
  ...raw,
  id: Number(raw.id),
  attempts: Number(raw.attempts),
  max_attempts: Number(raw.max_attempts),
});

/** A timestamp parameter (ISO text, cast in SQL): both drivers pass it through unchanged. */
export const at = (date: Date) => sql`${date.toISOString()}::timestamptz`;

/** Leases as one JSON parameter, unpacked with jsonb_to_recordset: one round trip for any batch size. */
export const leasesJson = (leases: Lease[]) =>
  JSON.stringify(leases.map((l) => ({ id: l.id, attempts: l.attempts })));
