import { type SQL, sql } from "drizzle-orm";
import { epochMs, isoText } from "../db/timestamps.js";
import type { StoredEvent } from "./types.js";

/**
 * An event's payload (the row aliased `alias`), as SQL text: the stored one, or for a `message.*` event the
 * webhook processor appended since migration 0031 (payload null), the one made from its message event — same
 * id, same time, so one primary-key probe of `message_events` — with the fields, and so the jsonb text, the
 * stored ones had. The log keeps one copy of a provider event's facts, in `message_events`. Should that row
 * be gone (only one of a month's two archives imported), `{}`: an export's line is never lost to a null.
 */
export const payloadSql = (alias: string) =>
  `coalesce(${alias}.payload, (select jsonb_build_object('message_event_id', m.id, 'provider', m.provider,
    'provider_event_id', m.provider_event_id, 'provider_message_id', m.provider_message_id,
    'recipient', m.recipient, 'url', m.url, 'reason', m.reason, 'group_id', m.group_id)
    from message_events m where m.id = ${alias}.id and m.event_at = ${alias}.ts), '{}'::jsonb)`;

/**
 * The select list that turns an `events` row (alias `alias`) into a StoredEvent, written once. With
 * `withBodies: false` the payload and metadata come back null (the writer already holds them).
 */
export const storedEventColumns = (alias: string, withBodies = true): SQL =>
  sql.raw(`${alias}.id, ${alias}.tenant_id, ${alias}.event_type, ${alias}.source,
    ${epochMs(`${alias}.ts`)} as ts_ms, ${epochMs(`${alias}.created_at`)} as created_ms,
    ${alias}.contact_id, ${alias}.session_id, ${alias}.message_id,
    ${withBodies ? `${payloadSql(alias)} as payload, ${alias}.metadata` : "null::jsonb as payload, null::jsonb as metadata"},
    ${alias}.event_key, ${alias}.correlation_id, ${alias}.causation_id, ${alias}.schema_version,
    ${alias}.sequence_number::float8 as sequence_number, ${alias}.position::float8 as position,
    ${alias}.transaction_id::text as transaction_id`);

/**
 * An `events` row (alias `alias`) as the JSON of its `publicEvent`, built by the database: the same fields and
 * values (times as RFC 3339 with milliseconds, payload and metadata as stored), for answers the API writes
 * as they come (a page of events, `RawJson`).
 */
export const publicEventJson = (alias: string): SQL =>
  sql.raw(`json_build_object('id', ${alias}.id, 'event_type', ${alias}.event_type, 'source', ${alias}.source,
    'timestamp', ${isoText(`${alias}.ts`)}, 'created_at', ${isoText(`${alias}.created_at`)},
    'contact_id', ${alias}.contact_id, 'session_id', ${alias}.session_id, 'message_id', ${alias}.message_id,
    'payload', ${payloadSql(alias)}, 'metadata', coalesce(${alias}.metadata, '{}'::jsonb),
    'event_key', ${alias}.event_key, 'correlation_id', ${alias}.correlation_id, 'causation_id', ${alias}.causation_id,
    'schema_version', ${alias}.schema_version, 'sequence_number', ${alias}.sequence_number::float8)`);

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
