import { sql } from "drizzle-orm";
import { payloadSql } from "../columns.js";
import { exportColumns, isoText } from "./columns.js";
import type { ExportEncoder } from "./encoder.js";
import { textBatch } from "./read.js";

/**
 * A nullable text of `events e` as a CSV field (RFC 4180): quoted, quotes doubled. Null is an empty field
 * and the empty string a quoted one (`""`), as PostgreSQL's COPY … CSV tells them apart.
 */
const quoted = (expression: string) =>
  sql.raw(`coalesce('"' || replace(${expression}, '"', '""') || '"', '')`);

/**
 * One event as a CSV record, written by the database (see ndjson.ts). Ids, types, sources, times and numbers
 * need no quoting (UUIDs, `[a-z0-9_.]`, a vocabulary, RFC 3339); every other text is quoted.
 */
const line = sql`e.id || ',' || e.event_type || ',' || e.source || ',' || ${isoText("ts")} || ','
  || ${isoText("created_at")} || ',' || ${quoted("e.contact_id")} || ',' || ${quoted("e.session_id")} || ','
  || coalesce(e.message_id::text, '') || ',' || ${quoted("e.event_key")} || ',' || ${quoted("e.correlation_id")}
  || ',' || ${quoted("e.causation_id")} || ',' || e.schema_version || ',' || coalesce(e.sequence_number::text, '')
  || ',' || ${quoted(`${payloadSql("e")}::text`)} || ',' || ${quoted("e.metadata::text")} || ${"\r\n"}::text`;

/** CSV with a header line of the export columns, CRLF line ends (RFC 4180), payload and metadata as JSON text. */
export function csvEncoder(): ExportEncoder {
  return {
    read: { text: line },
    start: () => Buffer.from(`${exportColumns.join(",")}\r\n`, "utf8"),
    batch: textBatch,
    end: () => undefined,
  };
}
