import { sql } from "drizzle-orm";
import * as timestamps from "../../db/timestamps.js";

/**
 * The columns of an export, in order: the public fields of an event (`publicEvent`), the same in every format.
 * NDJSON keeps payload and metadata as JSON values, CSV and Parquet carry them as JSON text, as the database
 * writes it (never parsed and written again: exact, numbers included).
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
] as const;

export type ExportColumn = (typeof exportColumns)[number];

/** A time of `events e` as the API shows it (RFC 3339, UTC, milliseconds: what `toISOString` gives), as SQL text. */
export const isoText = (column: "ts" | "created_at") => sql.raw(timestamps.isoText(`e.${column}`));
