import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { eventSources } from "../../domain/vocabularies.js";
import {
  createdAt,
  queueColumns,
  queueIndexes,
  queuePk,
  timestamps,
  timestamptz,
  uuidPk,
  xid8,
} from "./columns.js";
import { appendOnlyTenantId, tenantId } from "./tenancy.js";

export const eventSource = pgEnum("event_source", eventSources);

/**
 * The generic event log, range-partitioned by month on `ts` (when it happened; see the custom migration).
 * `transaction_id` + `position` let readers go by position without skipping rows of open transactions.
 */
export const events = pgTable(
  "events",
  {
    id: uuid("id").notNull().default(sql`herald_uuidv7()`),
    /** No foreign key (see appendOnlyTenantId). */
    tenantId: appendOnlyTenantId(),
    eventType: text("event_type").notNull(),
    source: eventSource("source").notNull(),
    contactId: text("contact_id"),
    sessionId: text("session_id"),
    messageId: uuid("message_id"),
    /**
     * Null on a `message.*` event appended by the webhook processor since migration 0031: its payload is made
     * from its message event (same id and time) as it is read (`events/columns.ts`), not stored twice.
     */
    payload: jsonb("payload").$type<Record<string, unknown>>().default({}),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    eventKey: text("event_key"),
    correlationId: text("correlation_id"),
    causationId: text("causation_id"),
    schemaVersion: integer("schema_version").notNull().default(1),
    sequenceNumber: bigint("sequence_number", { mode: "number" }),
    /** When it happened (the partition column). */
    ts: timestamptz("ts").notNull().defaultNow(),
    /** When Herald stored it. */
    createdAt: createdAt(),
    transactionId: xid8("transaction_id").notNull().default(sql`pg_current_xact_id()`),
    position: bigserial("position", { mode: "number" }).notNull(),
  },
  (t) => [
    primaryKey({ name: "events_pkey", columns: [t.id, t.ts] }),
    index("events_tenant_ts_idx").on(t.tenantId, t.ts.desc()),
    // Partial on the optional ids: events without them cost no index entry. Behind tenant_id: ids are the
    // product's own ("42", "c1"), the same in many tenants, and a timeline is one tenant's.
    index("events_tenant_contact_ts_idx")
      .on(t.tenantId, t.contactId, t.ts.desc())
      .where(sql`${t.contactId} is not null`),
    index("events_tenant_session_ts_idx")
      .on(t.tenantId, t.sessionId, t.ts.desc())
      .where(sql`${t.sessionId} is not null`),
    index("events_message_idx").on(t.messageId).where(sql`${t.messageId} is not null`),
    // Every read is scoped to one tenant (RLS), so type and source are indexed behind tenant_id only.
    index("events_tenant_type_source_ts_idx").on(t.tenantId, t.eventType, t.source, t.ts),
    index("events_transaction_position_idx").on(t.transactionId, t.position),
    index("events_correlation_idx")
      .on(t.tenantId, t.correlationId)
      .where(sql`${t.correlationId} is not null`),
  ],
);

/** Unpartitioned home of the `tenant + event_key` dedupe rule, so it holds across `events` partitions. */
export const eventKeys = pgTable(
  "event_keys",
  {
    tenantId: tenantId(),
    eventKey: text("event_key").notNull(),
    eventId: uuid("event_id").notNull(),
    ts: timestamptz("ts").notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ name: "event_keys_pkey", columns: [t.tenantId, t.eventKey] })],
);

/** A failed delivery attempt as the outbox records it. */
export interface AttemptError {
  attempt: number;
  error: string;
  at: string;
}

export type SubscriptionSink =
  | { type: "webhook"; url: string }
  | { type: "nats"; subject: string }
  | { type: "handler"; name: string };

export const subscriptions = pgTable(
  "subscriptions",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    name: text("name").notNull(),
    /** Exact types or prefix patterns such as `message.*`. */
    eventTypes: text("event_types").array().notNull(),
    sink: jsonb("sink").$type<SubscriptionSink>().notNull(),
    /** `whsec_…` signing secret for webhook sinks. */
    secret: text("secret").notNull(),
    ordered: boolean("ordered").notNull().default(false),
    maxAttempts: integer("max_attempts").notNull().default(5),
    pausedAt: timestamptz("paused_at"),
    ...timestamps(),
  },
  (t) => [uniqueIndex("subscriptions_name_key").on(t.tenantId, t.name)],
);

/** One row per (event, subscription) to deliver; the claim engine works it. */
export const outbox = pgTable(
  "outbox",
  {
    id: queuePk(),
    /** No foreign key: rows go with their subscription (which goes with its tenant). */
    tenantId: appendOnlyTenantId(),
    subscriptionId: uuid("subscription_id")
      .notNull()
      .references(() => subscriptions.id, { onDelete: "cascade" }),
    eventId: uuid("event_id").notNull(),
    eventTs: timestamptz("event_ts").notNull(),
    eventType: text("event_type").notNull(),
    /** Set on ordered subscriptions: never two rows of one key in flight. */
    orderingKey: text("ordering_key"),
    /** The in-process handler's name when the subscription's sink is a handler (a subscription's sink is fixed). */
    handler: text("handler"),
    replayId: uuid("replay_id"),
    /** Each failed attempt's `{ attempt, error, at }`, oldest first (null until one fails): a dead letter keeps them. */
    attemptErrors: jsonb("attempt_errors").$type<AttemptError[]>(),
    ...queueColumns(),
    ...timestamps(),
  },
  (t) => [
    // Claimed in lanes: webhook and NATS rows in the claim index, each handler's rows in its own order, so
    // that a process never reads past rows it cannot take (a backlog waiting for an application that is
    // down, say), and each row still costs one claim-index entry.
    ...queueIndexes("outbox", t, sql`${t.handler} is null`),
    index("outbox_handler_claim_idx")
      .on(t.handler, t.nextAttemptAt, t.id)
      .where(sql`${t.status} = 'pending' and ${t.handler} is not null`),
    index("outbox_ordering_idx")
      .on(t.subscriptionId, t.orderingKey, t.id)
      .where(sql`${t.orderingKey} is not null and ${t.status} in ('pending', 'processing')`),
    // Rows held for a paused subscription (due at 'infinity', so they sit at the far end of the claim index,
    // not in front of every claim): found by subscription when it resumes. Other rows cost no entry.
    index("outbox_held_idx")
      .on(t.subscriptionId)
      .where(sql`${t.status} = 'pending' and ${t.nextAttemptAt} = 'infinity'`),
  ],
);

/** Deliveries that used up their attempts: kept until retried, never lost. */
export const deadLetters = pgTable(
  "dead_letters",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    subscriptionId: uuid("subscription_id")
      .notNull()
      .references(() => subscriptions.id, { onDelete: "cascade" }),
    outboxId: bigint("outbox_id", { mode: "number" }).notNull(),
    eventId: uuid("event_id").notNull(),
    eventType: text("event_type").notNull(),
    attempts: integer("attempts").notNull(),
    lastError: text("last_error"),
    /** Every failed attempt of its outbox row, oldest first, as the row recorded them. */
    attemptErrors: jsonb("attempt_errors").$type<AttemptError[]>().notNull().default([]),
    failedAt: timestamptz("failed_at").notNull().defaultNow(),
    retriedAt: timestamptz("retried_at"),
    ...timestamps(),
  },
  (t) => [
    index("dead_letters_list_idx").on(t.tenantId, t.failedAt.desc(), t.id.desc()),
    uniqueIndex("dead_letters_outbox_key").on(t.outboxId),
  ],
);

/**
 * What the bus delivered, per tenant × UTC minute × subscription × event type: a delivered outbox row is
 * deleted in the transaction that counts it here (`queue/complete.ts`), so the outbox holds only work in
 * flight and dead rows, and delivery health (`bus/stats.ts`) reads these few rows. Latency (event stored →
 * delivered) as a histogram: `latency_buckets[k]` counts deliveries in bucket k of `bus/latencyBuckets.ts`.
 */
export const deliveryRollups = pgTable(
  "delivery_rollups",
  {
    /** No foreign key of its own: the subscription's goes with the tenant. */
    tenantId: appendOnlyTenantId(),
    subscriptionId: uuid("subscription_id")
      .notNull()
      .references(() => subscriptions.id, { onDelete: "cascade" }),
    minute: timestamptz("minute").notNull(),
    eventType: text("event_type").notNull(),
    delivered: bigint("delivered", { mode: "number" }).notNull().default(0),
    /** Delivered on a later attempt than the first. */
    retried: bigint("retried", { mode: "number" }).notNull().default(0),
    latencyMsSum: doublePrecision("latency_ms_sum").notNull().default(0),
    latencyMsMax: doublePrecision("latency_ms_max").notNull().default(0),
    latencyBuckets: integer("latency_buckets").array().notNull(),
    lastDeliveredAt: timestamptz("last_delivered_at").notNull(),
  },
  (t) => [
    primaryKey({
      name: "delivery_rollups_pkey",
      columns: [t.tenantId, t.minute, t.subscriptionId, t.eventType],
    }),
    index("delivery_rollups_subscription_idx").on(t.subscriptionId, t.minute),
  ],
);
