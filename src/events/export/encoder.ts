import type { SQL } from "drizzle-orm";
import { csvEncoder } from "./csv.js";
import { ndjsonEncoder } from "./ndjson.js";
import { parquetEncoder } from "./parquet.js";
import type { BatchRow } from "./read.js";

export const exportFormats = ["ndjson", "csv", "parquet"] as const;
export type ExportFormat = (typeof exportFormats)[number];

/**
 * Turns batches of events, in order, into the bytes of one file. Pure and deterministic: the same events in
 * the same batches give the same bytes. Each step returns the bytes it has ready (none when it holds rows
 * back, as Parquet does until a row group is full).
 */
export interface ExportEncoder {
  /**
   * How a batch is read: as one text of the events' lines, each an SQL text expression over `events e`
   * (`readExportText`), or as rows of a select list (`readExportRows`).
   */
  read: { text: SQL } | { rows: SQL };
  start(): Buffer | undefined;
  /** The bytes of a batch: its text (UTF-8, as read), or made of its rows. */
  batch(data: Buffer | BatchRow[]): Buffer | undefined;
  end(): Buffer | undefined;
}

export function exportEncoder(format: ExportFormat): ExportEncoder {
  switch (format) {
    case "ndjson":
      return ndjsonEncoder();
    case "csv":
      return csvEncoder();
    case "parquet":
      return parquetEncoder();
  }
}

/** The media type and file extension of each format. */
export const exportMedia: Record<ExportFormat, { contentType: string; extension: string }> = {
  ndjson: { contentType: "application/x-ndjson", extension: "ndjson" },
  csv: { contentType: "text/csv; charset=utf-8", extension: "csv" },
  parquet: { contentType: "application/vnd.apache.parquet", extension: "parquet" },
};
