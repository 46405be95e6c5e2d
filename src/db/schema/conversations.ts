import { sql } from "drizzle-orm";
import { index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { channels, threadReasons } from "../../domain/vocabularies.js";
import { queueColumns, queueIndexes, queuePk, timestamps, timestamptz, uuidPk } from "./columns.js";
import { tenantId } from "./tenancy.js";

/**
 * A thread with one outside party on one channel. Messages are not a separate table: inbound rows live in
 * `inbound_messages` and outbound ones in `outbound_messages`, both carrying `conversation_id`.
 */
export const conversations = pgTable(
  "conversations",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    channel: text("channel", { enum: channels }).notNull(),
    /** The outside party's normalized address: the threading key. */
    participantAddress: text("participant_address").notNull(),
    participants: text("participants").array().notNull().default(sql`'{}'::text[]`),
    lastActivityAt: timestamptz("last_activity_at").notNull().defaultNow(),
    messageCount: integer("message_count").notNull().default(0),
    lastMessagePreview: text("last_message_preview"),
    ...timestamps(),
  },
  (t) => [
    uniqueIndex("conversations_participant_key").on(t.tenantId, t.channel, t.participantAddress),
    index("conversations_activity_idx").on(t.tenantId, t.lastActivityAt.desc(), t.id.desc()),
  ],
);

/** Raw inbound messages as received (API or provider webhook), queued for threading. */
export const inboundEvents = pgTable(
  "inbound_events",
  {
    id: queuePk(),
    tenantId: tenantId(),
    channel: text("channel", { enum: channels }).notNull(),
    provider: text("provider").notNull(),
    providerMessageId: text("provider_message_id").notNull(),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    ...queueColumns(),
    ...timestamps(),
  },
  (t) => [
    uniqueIndex("inbound_events_provider_message_key").on(t.tenantId, t.channel, t.providerMessageId),
    ...queueIndexes("inbound_events", t),
  ],
);

export const inboundMessages = pgTable(
  "inbound_messages",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    channel: text("channel", { enum: channels }).notNull(),
    provider: text("provider").notNull(),
    providerMessageId: text("provider_message_id").notNull(),
    fromAddress: text("from_address").notNull(),
    toAddress: text("to_address").notNull(),
    subject: text("subject"),
    body: text("body").notNull().default(""),
    conversationId: uuid("conversation_id").references(() => conversations.id, { onDelete: "set null" }),
    /** Why it joined its conversation (see `threadReasons`). */
    threadReason: text("thread_reason", { enum: threadReasons }),
    /** An email's `In-Reply-To` and `References` message ids, without angle brackets (threading inputs). */
    inReplyTo: text("in_reply_to"),
    referenceIds: text("reference_ids").array(),
    contactId: text("contact_id"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    receivedAt: timestamptz("received_at").notNull().defaultNow(),
    ...timestamps(),
  },
  (t) => [
    uniqueIndex("inbound_messages_provider_message_key").on(t.tenantId, t.channel, t.providerMessageId),
    // A conversation's messages in order (merged with outbound_messages_conversation_idx), ties by id.
    index("inbound_messages_conversation_idx").on(t.conversationId, t.receivedAt, t.id),
  ],
);
