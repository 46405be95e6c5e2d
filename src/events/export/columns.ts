import type { StoredEvent } from "../types.js";

/**
 * The columns of an export, in order: the public fields of an event (`publicEvent`), the same in every format.
 * NDJSON keeps payload and metadata as JSON values, CSV and Parquet carry them as JSON text.
 */
export const exportColumns = [
  "id",
  "event_type",
  "source",
  "timestamp",
  "created_at",
  "contact_id",
  "session_id",
  "message_id",
  "event_key",
  "correlation_id",
  "causation_id",
  "schema_version",
  "sequence_number",
  "payload",
  "metadata",
] as const satisfies readonly (keyof StoredEvent)[];

export type ExportColumn = (typeof exportColumns)[number];

/** An event as one export row: exactly the export columns, in their order (nothing internal leaks). */
export type ExportRow = Pick<StoredEvent, ExportColumn>;

export function exportRow(event: StoredEvent): ExportRow {
  return {
    id: event.id,
    event_type: event.event_type,
    source: event.source,
    timestamp: event.timestamp,
    created_at: event.created_at,
    contact_id: event.contact_id,
    session_id: event.session_id,
    message_id: event.message_id,
    event_key: event.event_key,
    correlation_id: event.correlation_id,
    causation_id: event.causation_id,
    schema_version: event.schema_version,
    sequence_number: event.sequence_number,
    payload: event.payload,
    metadata: event.metadata,
  };
}
