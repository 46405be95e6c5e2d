import { type SQL, sql } from "drizzle-orm";
import {
  bigint,
  customType,
  type ExtraConfigColumn,
  index,
  integer,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { queueStatuses } from "../../domain/vocabularies.js";

/** Column shapes shared by every table, declared once. */

export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => "bytea",
  fromDriver: (value) => (Buffer.isBuffer(value) ? value : Buffer.from(value)),
});

/** PostgreSQL's 64-bit transaction id; read as a decimal string so it never loses precision. */
export const xid8 = customType<{ data: string }>({ dataType: () => "xid8" });

export const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** UUIDv7 primary key; `herald_uuidv7()` is created by migration 0000 so SQL-side inserts get one too. */
export const uuidPk = () => uuid("id").primaryKey().default(sql`herald_uuidv7()`);

/** Queue rows use a bigint identity: smaller indexes and cheaper `unnest($1::bigint[])` batches. */
export const queuePk = () => bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity();

export const createdAt = () => timestamptz("created_at").notNull().defaultNow();
export const updatedAt = () =>
  timestamptz("updated_at")
    .notNull()
    .defaultNow()
    .$onUpdate(() => new Date());

export const timestamps = () => ({ createdAt: createdAt(), updatedAt: updatedAt() });

/**
 * The claim engine's columns, shared by `webhook_deliveries`, `outbox`, `inbound_events` and
 * `scheduled_actions`. `locked_by` + `attempts` form the lease token checked on completion.
 */
export const queueColumns = () => ({
  status: text("status", { enum: queueStatuses }).notNull().default("pending"),
  attempts: integer("attempts").notNull().default(0),
  maxAttempts: integer("max_attempts").notNull().default(5),
  nextAttemptAt: timestamptz("next_attempt_at").notNull().defaultNow(),
  lockedBy: text("locked_by"),
  lockedUntil: timestamptz("locked_until"),
  lastError: text("last_error"),
});

/**
 * The claim engine's indexes, shared like its columns: due pending rows in claim order, and rows in flight
 * by lease expiry (for the reaper and the depth gauge). Both partial, so finished rows cost nothing. A queue
 * whose claim runs in lanes (see `QueueDefinition.claimLanes`) narrows the claim index to its main
 * lane with `claimWhere`, and indexes its other lanes itself.
 */
export const queueIndexes = (
  table: string,
  t: {
    nextAttemptAt: ExtraConfigColumn;
    id: ExtraConfigColumn;
    status: ExtraConfigColumn;
    lockedUntil: ExtraConfigColumn;
  },
  claimWhere?: SQL,
) => [
  index(`${table}_claim_idx`)
    .on(t.nextAttemptAt, t.id)
    .where(claimWhere ? sql`${t.status} = 'pending' and ${claimWhere}` : sql`${t.status} = 'pending'`),
  index(`${table}_processing_idx`).on(t.lockedUntil).where(sql`${t.status} = 'processing'`),
];
