import type { StoredEvent } from "../types.js";
import { exportColumns } from "./columns.js";
import type { ExportEncoder } from "./encoder.js";

const needsQuotes = /[",\r\n]/;

/**
 * One CSV field (RFC 4180): quoted when it holds a quote, comma or line break, quotes doubled. Null is an
 * empty field and the empty string a quoted one (`""`), as PostgreSQL's COPY … CSV tells them apart.
 */
export function csvField(value: string | number | null): string {
  if (value === null) return "";
  const text = String(value);
  if (text === "") return '""';
  return needsQuotes.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const csvLine = (event: StoredEvent) =>
  `${[
    csvField(event.id),
    csvField(event.event_type),
    csvField(event.source),
    csvField(event.timestamp),
    csvField(event.created_at),
    csvField(event.contact_id),
    csvField(event.session_id),
    csvField(event.message_id),
    csvField(event.event_key),
    csvField(event.correlation_id),
    csvField(event.causation_id),
    csvField(event.schema_version),
    csvField(event.sequence_number),
    csvField(JSON.stringify(event.payload)),
    csvField(JSON.stringify(event.metadata)),
  ].join(",")}\r\n`;

/** CSV with a header line of the export columns, CRLF line ends (RFC 4180), payload and metadata as JSON text. */
export function csvEncoder(): ExportEncoder {
  return {
    start: () => Buffer.from(`${exportColumns.join(",")}\r\n`, "utf8"),
    batch(events: StoredEvent[]) {
      let text = "";
      for (const event of events) text += csvLine(event);
      return Buffer.from(text, "utf8");
    },
    end: () => undefined,
  };
}
