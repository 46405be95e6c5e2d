import { sql } from "drizzle-orm";
import { bigint, check, pgTable, text, uniqueIndex } from "drizzle-orm/pg-core";
import { createdAt, timestamptz, updatedAt } from "./columns.js";

/**
 * One row per archived month of a monthly-partitioned table (src/retention/): where its archive file is,
 * how many rows it holds and their checksums. The state only moves forward — `exported` (the file is
 * written), `verified` (read back: count and checksums match), `dropped` (the partition is detached and
 * dropped, in the transaction that sets the state) — and `restored` when `herald import` put the rows back.
 * A crash at any step leaves either the partition or a verified archive; a re-run resumes from the state.
 */
export const archives = pgTable(
  "archives",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    /** The partitioned parent: `events` or `message_events`. */
    tableName: text("table_name").notNull(),
    /** The first instant (UTC) of the archived month. */
    month: timestamptz("month").notNull(),
    partitionName: text("partition_name").notNull(),
    state: text("state").notNull(),
    /** Absolute path of the archive file (gzip of the partition's COPY text). */
    path: text("path").notNull(),
    format: text("format").notNull(),
    rows: bigint("rows", { mode: "number" }).notNull(),
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    /** SHA-256 (hex) of the file as written. */
    sha256: text("sha256").notNull(),
    /** SHA-256 (hex) of the uncompressed rows (the COPY stream PostgreSQL sent). */
    contentSha256: text("content_sha256").notNull(),
    verifiedAt: timestamptz("verified_at"),
    droppedAt: timestamptz("dropped_at"),
    restoredAt: timestamptz("restored_at"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("archives_table_month_key").on(t.tableName, t.month),
    check("archives_state", sql`${t.state} in ('exported', 'verified', 'dropped', 'restored')`),
  ],
);
