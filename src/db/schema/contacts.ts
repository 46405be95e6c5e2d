import { sql } from "drizzle-orm";
import { boolean, index, integer, pgTable, text, unique, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { channels, suppressionReasons } from "../../domain/vocabularies.js";
import { timestamps, timestamptz, uuidPk } from "./columns.js";
import { appendOnlyTenantId, tenantId } from "./tenancy.js";

/** A contact's addresses per channel. Contacts belong to the host product: `contact_id` is its text id. */
export const contactChannels = pgTable(
  "contact_channels",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    contactId: text("contact_id").notNull(),
    channel: text("channel", { enum: channels }).notNull(),
    address: text("address").notNull(),
    isPrimary: boolean("is_primary").notNull().default(false),
    verifiedAt: timestamptz("verified_at"),
    ...timestamps(),
  },
  (t) => [
    uniqueIndex("contact_channels_contact_address_key").on(t.tenantId, t.contactId, t.channel, t.address),
    index("contact_channels_address_idx").on(t.tenantId, t.channel, t.address),
  ],
);

/** Addresses not to send to. `group_id` scopes a group unsubscribe; null means every group. */
export const communicationSuppressions = pgTable(
  "communication_suppressions",
  {
    id: uuidPk(),
    /** No foreign key (see appendOnlyTenantId): suppressions are written in bulk by the webhook processor. */
    tenantId: appendOnlyTenantId(),
    channel: text("channel", { enum: channels }).notNull(),
    /** Normalized: emails lower-cased and trimmed, phone numbers E.164. */
    address: text("address").notNull(),
    reason: text("reason", { enum: suppressionReasons }).notNull(),
    groupId: integer("group_id"),
    sourceEventId: uuid("source_event_id"),
    /** When the event that created it happened: a later resubscribe lifts it, an older one does not. */
    sourceEventAt: timestamptz("source_event_at"),
    expiresAt: timestamptz("expires_at"),
    ...timestamps(),
  },
  (t) => [
    unique("communication_suppressions_address_key")
      .on(t.tenantId, t.channel, t.address, t.reason, t.groupId)
      .nullsNotDistinct(),
    index("communication_suppressions_tenant_idx").on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index("communication_suppressions_expiry_idx").on(t.expiresAt).where(sql`${t.expiresAt} is not null`),
  ],
);
