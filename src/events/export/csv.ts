import { ByteBuilder } from "./bytes.js";
import { exportColumns, isoFormatter } from "./columns.js";
import type { ExportEncoder } from "./encoder.js";
import type { ExportRecord } from "./read.js";

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

// Ids, types, sources and times need no quoting (UUIDs, `[a-z0-9_.]`, a vocabulary, RFC 3339).
const csvLineWriter = () => {
  const tsIso = isoFormatter();
  const createdIso = isoFormatter();
  return (r: ExportRecord) =>
    `${r.id},${r.event_type},${r.source},${tsIso(r.ts_ms)},${createdIso(r.created_ms)},${csvField(r.contact_id)},${csvField(r.session_id)},${r.message_id ?? ""},${csvField(r.event_key)},${csvField(r.correlation_id)},${csvField(r.causation_id)},${r.schema_version},${r.sequence_number ?? ""},${csvField(r.payload)},${csvField(r.metadata)}\r\n`;
};

/** CSV with a header line of the export columns, CRLF line ends (RFC 4180), payload and metadata as JSON text. */
export function csvEncoder(): ExportEncoder {
  const csvLine = csvLineWriter();
  const bytes = new ByteBuilder();
  return {
    start: () => Buffer.from(`${exportColumns.join(",")}\r\n`, "utf8"),
    batch(records) {
      for (const r of records) bytes.add(csvLine(r));
      return bytes.take();
    },
    end: () => undefined,
  };
}
