import { sql } from "drizzle-orm";
import { ByteWriter, type ColumnSource, ParquetWriter, type SchemaElement } from "hyparquet-writer";
import { epochMs } from "../../db/timestamps.js";
import type { EventSource } from "../../domain/vocabularies.js";
import { payloadSql } from "../columns.js";
import { type ExportColumn, exportColumns } from "./columns.js";
import type { ExportEncoder } from "./encoder.js";
import type { BatchRow } from "./read.js";

/**
 * Rows per row group. Rows are held back until a group is full, so memory stays bounded by one group
 * (tens of MB at most) whatever the export's size; the groups fall at the same rows whatever the read batches.
 */
export const parquetRowGroupRows = 10_000;

const text = (name: ExportColumn, required = false): SchemaElement => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  logical_type: { type: "STRING" },
  repetition_type: required ? "REQUIRED" : "OPTIONAL",
});
const time = (name: ExportColumn): SchemaElement => ({
  name,
  type: "INT64",
  converted_type: "TIMESTAMP_MILLIS",
  logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
  repetition_type: "REQUIRED",
});
const json = (name: ExportColumn): SchemaElement => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "JSON",
  logical_type: { type: "JSON" },
  repetition_type: "REQUIRED",
});

/** The file's schema: the export columns with their types (times as UTC milliseconds, bodies as JSON). */
const schema: SchemaElement[] = [
  { name: "root", num_children: exportColumns.length },
  text("id", true),
  text("event_type", true),
  text("source", true),
  time("timestamp"),
  time("created_at"),
  text("contact_id"),
  text("session_id"),
  text("message_id"),
  text("event_key"),
  text("correlation_id"),
  text("causation_id"),
  { name: "schema_version", type: "INT32", repetition_type: "REQUIRED" },
  { name: "sequence_number", type: "INT64", repetition_type: "OPTIONAL" },
  json("payload"),
  json("metadata"),
];

/** An event as Parquet's rows take it: times as epoch milliseconds, payload and metadata as JSON text. */
interface ParquetRow extends BatchRow {
  id: string;
  event_type: string;
  source: EventSource;
  ts_ms: number;
  created_ms: number;
  contact_id: string | null;
  session_id: string | null;
  message_id: string | null;
  event_key: string | null;
  correlation_id: string | null;
  causation_id: string | null;
  schema_version: number;
  sequence_number: string | null;
  payload: string;
  metadata: string;
}

const columns =
  sql.raw(`e.id, e.event_type, e.source, ${epochMs("e.ts")} as ts_ms, ${epochMs("e.created_at")} as created_ms,
  e.contact_id, e.session_id, e.message_id, e.event_key, e.correlation_id, e.causation_id, e.schema_version,
  e.sequence_number::text as sequence_number, ${payloadSql("e")}::text as payload, e.metadata::text as metadata`);

/** Each column's value of an event, as the writer takes it for the schema above. */
const columnValue: Record<ExportColumn, (e: ParquetRow) => unknown> = {
  id: (e) => e.id,
  event_type: (e) => e.event_type,
  source: (e) => e.source,
  timestamp: (e) => e.ts_ms,
  created_at: (e) => e.created_ms,
  contact_id: (e) => e.contact_id,
  session_id: (e) => e.session_id,
  message_id: (e) => e.message_id,
  event_key: (e) => e.event_key,
  correlation_id: (e) => e.correlation_id,
  causation_id: (e) => e.causation_id,
  schema_version: (e) => e.schema_version,
  sequence_number: (e) => (e.sequence_number === null ? null : BigInt(e.sequence_number)),
  // The writer takes JSON values (and writes them compact).
  payload: (e) => JSON.parse(e.payload),
  metadata: (e) => JSON.parse(e.metadata),
};

/** A ByteWriter whose bytes are taken out after each row group, so the file never sits whole in memory. */
class DrainingWriter extends ByteWriter {
  private ready: Buffer[] = [];

  flush() {
    // Copied: the writer reuses its buffer from index 0 (its `offset` keeps counting the whole file).
    if (this.index > 0) this.ready.push(Buffer.from(this.buffer.slice(0, this.index)));
    this.index = 0;
  }

  override finish() {
    this.flush();
  }

  take(): Buffer | undefined {
    this.flush();
    const bytes = this.ready.length === 0 ? undefined : Buffer.concat(this.ready);
    this.ready = [];
    return bytes;
  }
}

/**
 * Apache Parquet written with hyparquet-writer: row groups of `rowGroupRows`, Snappy-compressed, written as
 * they fill; the footer at the end. Deterministic (no time or host in the file; `created_by` is fixed).
 */
export function parquetEncoder(rowGroupRows = parquetRowGroupRows): ExportEncoder {
  const writer = new DrainingWriter();
  let parquet: ParquetWriter | undefined;
  let held: ParquetRow[] = [];

  const writeGroup = (events: ParquetRow[]) => {
    const columnData: ColumnSource[] = exportColumns.map((name) => ({
      name,
      data: events.map(columnValue[name]) as ColumnSource["data"],
    }));
    // Synchronous: the writer's flush returns nothing, so no row group waits for another.
    void parquet!.write({ columnData, rowGroupSize: events.length });
  };

  return {
    read: { rows: columns },
    start() {
      parquet = new ParquetWriter({ writer, schema, createdBy: "herald" });
      return writer.take();
    },
    batch(rows) {
      const events = rows as ParquetRow[];
      held = held.length === 0 ? events : held.concat(events);
      while (held.length >= rowGroupRows) {
        writeGroup(held.slice(0, rowGroupRows));
        held = held.slice(rowGroupRows);
      }
      return writer.take();
    },
    end() {
      if (held.length > 0) writeGroup(held);
      held = [];
      void parquet!.finish();
      return writer.take();
    },
  };
}
