import { ByteBuilder } from "./bytes.js";
import { isoFormatter } from "./columns.js";
import type { ExportEncoder } from "./encoder.js";
import type { ExportRecord } from "./read.js";

const text = (value: string | null) => (value === null ? "null" : JSON.stringify(value));

/**
 * One event as a JSON line, its fields in the export columns' order. Written by hand rather than through
 * JSON.stringify of an object: payload and metadata go in as the database's JSON text, unparsed. Ids, types
 * and sources need no escaping (UUIDs, `[a-z0-9_.]`, a vocabulary).
 */
const lineWriter = () => {
  const tsIso = isoFormatter();
  const createdIso = isoFormatter();
  return (r: ExportRecord) =>
    `{"id":"${r.id}","event_type":"${r.event_type}","source":"${r.source}","timestamp":"${tsIso(r.ts_ms)}","created_at":"${createdIso(r.created_ms)}","contact_id":${text(r.contact_id)},"session_id":${text(r.session_id)},"message_id":${r.message_id === null ? "null" : `"${r.message_id}"`},"event_key":${text(r.event_key)},"correlation_id":${text(r.correlation_id)},"causation_id":${text(r.causation_id)},"schema_version":${r.schema_version},"sequence_number":${r.sequence_number ?? "null"},"payload":${r.payload},"metadata":${r.metadata}}\n`;
};

/** Newline-delimited JSON: one event per line. */
export function ndjsonEncoder(): ExportEncoder {
  const line = lineWriter();
  const bytes = new ByteBuilder();
  return {
    start: () => undefined,
    batch(records) {
      for (const r of records) bytes.add(line(r));
      return bytes.take();
    },
    end: () => undefined,
  };
}
