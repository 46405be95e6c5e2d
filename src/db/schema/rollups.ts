import { sql } from "drizzle-orm";
import { bigint, boolean, check, pgTable, primaryKey, text } from "drizzle-orm/pg-core";
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
    /** No foreign key, like the log's: the tenant-delete trigger removes a tenant's rows (migration 0019). */
    tenantId: appendOnlyTenantId(),
    /** The UTC hour the events happened in (their `ts` truncated). */
    hour: timestamptz("hour").notNull(),
    eventType: text("event_type").notNull(),
    source: eventSource("source").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ name: "event_rollups_pkey", columns: [t.tenantId, t.hour, t.eventType, t.source] })],
);

/**
 * Where the rollup projection stands in the log: every event at or before (transaction id, position) is
 * counted in `event_rollups`, none after it. One row, made by the migration.
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
