import { type SQL, sql } from "drizzle-orm";
import { epochMs } from "../db/timestamps.js";
import type { StoredEvent } from "./types.js";

/**
 * The select list that turns an `events` row (alias `alias`) into a StoredEvent, written once. With
 * `withBodies: false` the payload and metadata come back null (the writer already holds them).
 */
export const storedEventColumns = (alias: string, withBodies = true): SQL =>
  sql.raw(`${alias}.id, ${alias}.tenant_id, ${alias}.event_type, ${alias}.source,
    ${epochMs(`${alias}.ts`)} as ts_ms, ${epochMs(`${alias}.created_at`)} as created_ms,
    ${alias}.contact_id, ${alias}.session_id, ${alias}.message_id,
    ${withBodies ? `${alias}.payload, ${alias}.metadata` : "null::jsonb as payload, null::jsonb as metadata"},
    ${alias}.event_key, ${alias}.correlation_id, ${alias}.causation_id, ${alias}.schema_version,
    ${alias}.sequence_number::float8 as sequence_number, ${alias}.position::float8 as position,
    ${alias}.transaction_id::text as transaction_id`);

/** A row selected with `storedEventColumns` as a StoredEvent (PGlite may hand jsonb back as text). */
export function toStoredEvent(row: Record<string, unknown>): StoredEvent {
  const json = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v);
  const { ts_ms, created_ms, ...rest } = row;
  return {
    ...(rest as unknown as StoredEvent),
    // Epoch milliseconds are cheaper to select than formatted text; the API shows RFC 3339 with ms.
    timestamp: new Date(Number(ts_ms)).toISOString(),
    created_at: new Date(Number(created_ms)).toISOString(),
    payload: json(row.payload) ?? {},
    metadata: json(row.metadata) ?? {},
    schema_version: Number(row.schema_version),
    sequence_number: row.sequence_number === null ? null : Number(row.sequence_number),
    position: Number(row.position),
  };
}

/** The public view of an event (API responses, sink bodies): no tenant id, no internal positions. */
export function publicEvent(event: StoredEvent) {
  const { tenant_id: _tenant, transaction_id: _tx, position: _position, ...rest } = event;
  return rest;
}
