import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
import { eventSource } from "./bus.js";
import { timestamptz, xid8 } from "./columns.js";
import { appendOnlyTenantId } from "./tenancy.js";

/**
 * How many events each tenant has per UTC hour, type and source, counted by the rollup projection
 * (src/events/rollups.ts) up to its checkpoint: totals and stats add the few events after the checkpoint.
 */
export const eventRollups = pgTable(
  "event_rollups",
  {
    /** No foreign key, like the log's: the tenant-delete trigger removes a tenant's rows (migrations 0019, 0020). */
    tenantId: appendOnlyTenantId(),
    /** The UTC hour the events happened in (their `ts` truncated). */
    hour: timestamptz("hour").notNull(),
    eventType: text("event_type").notNull(),
    source: eventSource("source").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
    /**
     * The time of the hour's first and last event of this type and source: a time range's bounds without
     * reading the log (migration 0037 filled them in; null only for months archived and dropped before it).
     */
    firstAt: timestamptz("first_at"),
    lastAt: timestamptz("last_at"),
  },
  (t) => [
    primaryKey({ name: "event_rollups_pkey", columns: [t.tenantId, t.hour, t.eventType, t.source] }),
    // The key and the count: stats over a range read the index alone (an index-only scan), not a heap page
    // per row (11,400 rows for a week of a busy tenant by hour). Drizzle cannot declare INCLUDE: a key column.
    index("event_rollups_counts_idx").on(t.tenantId, t.hour, t.eventType, t.source, t.count),
  ],
);

/**
 * The same counts per UTC day, kept by the same projection statement as the hourly ones: a month's total
 * or stats add ~30 rows per type and source instead of ~720.
 */
export const eventRollupsDaily = pgTable(
  "event_rollups_daily",
  {
    /** No foreign key, like the hourly rollups' (migration 0020 extends the tenant-delete trigger). */
    tenantId: appendOnlyTenantId(),
    /** The UTC day the events happened in (their `ts` truncated). */
    day: timestamptz("day").notNull(),
    eventType: text("event_type").notNull(),
    source: eventSource("source").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
  },
  (t) => [
    primaryKey({ name: "event_rollups_daily_pkey", columns: [t.tenantId, t.day, t.eventType, t.source] }),
    index("event_rollups_daily_counts_idx").on(t.tenantId, t.day, t.eventType, t.source, t.count),
  ],
);

/**
 * The same counts per UTC month: a tenant's total over all its time adds ~12 rows a year per type and source
 * instead of ~365.
 */
export const eventRollupsMonthly = pgTable(
  "event_rollups_monthly",
  {
    /** No foreign key, like the hourly rollups' (migration 0037 extends the tenant-delete trigger). */
    tenantId: appendOnlyTenantId(),
    /** The UTC month the events happened in (their `ts` truncated). */
    month: timestamptz("month").notNull(),
    eventType: text("event_type").notNull(),
    source: eventSource("source").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
  },
  (t) => [
    primaryKey({ name: "event_rollups_monthly_pkey", columns: [t.tenantId, t.month, t.eventType, t.source] }),
    index("event_rollups_monthly_counts_idx").on(t.tenantId, t.month, t.eventType, t.source, t.count),
  ],
);

/**
 * Where the rollup projection stands in the log: every event at or before (transaction id, position) is
 * counted in `event_rollups`, `event_rollups_daily` and `event_rollups_monthly`, none after it. One row, made by the migration.
 */
export const eventRollupCheckpoint = pgTable(
  "event_rollup_checkpoint",
  {
    id: boolean("id").primaryKey().default(true),
    transactionId: xid8("transaction_id").notNull(),
    position: bigint("position", { mode: "number" }).notNull(),
  },
  (t) => [check("event_rollup_checkpoint_one_row", sql`${t.id}`)],
);
