import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { channels, messageStatuses, threadReasons } from "../../domain/vocabularies.js";
import { contactCampaigns } from "./campaigns.js";
import { bytea, queueColumns, queueIndexes, queuePk, timestamps, timestamptz, uuidPk } from "./columns.js";
import { appendOnlyTenantId, tenantId } from "./tenancy.js";

/** A message the tenant sent through a provider; provider events link to it. */
export const outboundMessages = pgTable(
  "outbound_messages",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    channel: text("channel", { enum: channels }).notNull(),
    provider: text("provider").notNull(),
    providerMessageId: text("provider_message_id"),
    toAddress: text("to_address").notNull(),
    fromAddress: text("from_address"),
    subject: text("subject"),
    body: text("body"),
    contactId: text("contact_id"),
    campaignId: uuid("campaign_id").references(() => contactCampaigns.id, { onDelete: "set null" }),
    /**
     * Why it joined its conversation: `outbound` (see `threadReasons`). Its conversation is its recipient's
     * (tenant, channel, `to_address`), found by `outbound_messages_recipient_idx`, not stored.
     */
    threadReason: text("thread_reason", { enum: threadReasons }),
    /**
     * The RFC 5322 `Message-ID` an email was sent with, without angle brackets: replies name it in
     * `In-Reply-To`/`References`. Separate from `provider_message_id`, which for most email providers is
     * their own id (SendGrid's X-Message-Id), not the header.
     */
    emailMessageId: text("email_message_id"),
    dedupeKey: text("dedupe_key"),
    status: text("status", { enum: messageStatuses }).notNull().default("sent"),
    statusAt: timestamptz("status_at").notNull().defaultNow(),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    sentAt: timestamptz("sent_at").notNull().defaultNow(),
    ...timestamps(),
  },
  (t) => [
    uniqueIndex("outbound_messages_dedupe_key").on(t.tenantId, t.dedupeKey),
    index("outbound_messages_provider_id_idx").on(t.tenantId, t.provider, t.providerMessageId),
    // Messages to an address, and a conversation's outbound messages in order (merged with
    // inbound_messages_conversation_idx), ties by id.
    index("outbound_messages_recipient_idx").on(t.tenantId, t.channel, t.toAddress, t.sentAt, t.id),
    index("outbound_messages_list_idx").on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index("outbound_messages_contact_idx").on(t.tenantId, t.contactId),
    // A campaign's messages newest first (`GET /api/v1/messages?campaign_id=`, the console): partial, so
    // messages of no campaign cost no entry.
    index("outbound_messages_campaign_idx")
      .on(t.tenantId, t.campaignId, t.createdAt.desc(), t.id.desc())
      .where(sql`${t.campaignId} is not null`),
    index("outbound_messages_email_message_id_idx")
      .on(t.tenantId, t.emailMessageId)
      .where(sql`${t.emailMessageId} is not null`),
  ],
);

/**
 * Canonical provider events. Range-partitioned by month on `event_at` (see the custom migration), so the
 * primary key includes `event_at`; the cross-partition dedupe rule lives in `message_event_keys`.
 */
export const messageEvents = pgTable(
  "message_events",
  {
    id: uuid("id").notNull().default(sql`herald_uuidv7()`),
    /** No foreign key (see appendOnlyTenantId). */
    tenantId: appendOnlyTenantId(),
    outboundMessageId: uuid("outbound_message_id").references(() => outboundMessages.id, {
      onDelete: "set null",
    }),
    deliveryId: bigint("delivery_id", { mode: "number" }),
    provider: text("provider").notNull(),
    providerEventId: text("provider_event_id"),
    providerMessageId: text("provider_message_id"),
    dedupeKey: text("dedupe_key").notNull(),
    type: text("type").notNull(),
    eventAt: timestamptz("event_at").notNull(),
    recipient: text("recipient"),
    url: text("url"),
    ip: text("ip"),
    userAgent: text("user_agent"),
    reason: text("reason"),
    bounceClassification: text("bounce_classification"),
    machineOpen: boolean("machine_open"),
    groupId: integer("group_id"),
    /**
     * The provider's event as JSON, only where it is not a slice of its archived delivery (`raw_offset`,
     * `raw_length`: where its bytes sit in `webhook_deliveries.body`), and in rows stored before 0030.
     */
    payload: jsonb("payload"),
    rawOffset: integer("raw_offset"),
    rawLength: integer("raw_length"),
    /**
     * Its `message.<type>` event in the log (same `ts` as `event_at`), given its message when linked later:
     * named here before migration 0031; since then null, the log event having this event's own id.
     */
    logEventId: uuid("log_event_id"),
  },
  (t) => [
    primaryKey({ name: "message_events_pkey", columns: [t.id, t.eventAt] }),
    index("message_events_tenant_event_at_idx").on(t.tenantId, t.eventAt.desc()),
    // Partial: orphans (no message yet) cost no entry here; `outbound_message_id = $1` still uses it.
    index("message_events_outbound_message_idx")
      .on(t.outboundMessageId)
      .where(sql`${t.outboundMessageId} is not null`),
    // A group unsubscribe checks for a later resubscribe of the same address and group: an index over the
    // (few) resubscribe events keeps that a lookup instead of a scan of the tenant's events.
    index("message_events_resubscribe_idx")
      .on(t.tenantId, t.recipient, t.groupId, t.eventAt)
      .where(sql`${t.type} = 'group_resubscribe'`),
    // Orphans waiting for their message, by their id's root (the text before the first "."), which every
    // registered id that links them shares (see `messageIdRoot` in domain/messageIds.ts).
    index("message_events_unlinked_idx")
      .on(t.tenantId, sql`split_part(${t.providerMessageId}, '.', 1)`)
      .where(sql`${t.outboundMessageId} is null`),
  ],
);

/**
 * One row per stored provider event: the dedupe rule that must hold across `message_events` partitions. The
 * key is the MD5 of `provider:dedupe_key` as a UUID (`domain/dedupeHash.ts`; migration 0031 made it from the
 * text columns): 16 bytes whatever the provider's ids, where the text key cost ~100 bytes a row and an entry.
 */
export const messageEventKeys = pgTable(
  "message_event_keys",
  {
    /** No foreign key (see appendOnlyTenantId). */
    tenantId: appendOnlyTenantId(),
    keyHash: uuid("key_hash").notNull(),
  },
  (t) => [primaryKey({ name: "message_event_keys_pkey", columns: [t.tenantId, t.keyHash] })],
);

/** Every provider webhook request as received: the raw bytes, kept and processed through the queue. */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: queuePk(),
    /** No foreign key (see appendOnlyTenantId). */
    tenantId: appendOnlyTenantId(),
    /** No foreign key either (its check locks the source row on every request): sources are retired, never deleted. */
    sourceId: uuid("source_id").notNull(),
    provider: text("provider").notNull(),
    headers: jsonb("headers").$type<Record<string, string>>().notNull(),
    body: bytea("body").notNull(),
    remoteIp: text("remote_ip"),
    receivedAt: timestamptz("received_at").notNull().defaultNow(),
    eventCount: integer("event_count").notNull().default(0),
    /** Set when a verified body could not be accepted (not an array of objects…); never processed. */
    rejectedReason: text("rejected_reason"),
    processedAt: timestamptz("processed_at"),
    ...queueColumns(),
    ...timestamps(),
  },
  (t) => [
    ...queueIndexes("webhook_deliveries", t),
    index("webhook_deliveries_source_idx").on(t.sourceId, t.receivedAt),
  ],
);
