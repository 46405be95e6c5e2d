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

/**
 * A condition that is always true and, as a side effect, commits the statement's transaction without
 * waiting for the WAL flush. For claims and acknowledgements only: if a crash loses the last few of them,
 * the rows are simply claimed again or redelivered when their lease expires, which at-least-once delivery
 * allows. Never for writes that acknowledge data to a client (events, webhook deliveries).
 */
export const relaxedCommit = sql`(select set_config('synchronous_commit', 'off', true)) is not null`;
