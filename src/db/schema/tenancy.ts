import { sql } from "drizzle-orm";
import { index, jsonb, pgTable, primaryKey, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { providers } from "../../domain/vocabularies.js";
import { timestamps, timestamptz, uuidPk } from "./columns.js";

export const tenants = pgTable("tenants", {
  id: uuidPk(),
  name: text("name").notNull().unique("tenants_name_key"),
  ...timestamps(),
});

/** Every tenant-owned row points at its tenant; deleting a tenant removes all of its data. */
export const tenantId = () =>
  uuid("tenant_id")
    .notNull()
    .references(() => tenants.id, { onDelete: "cascade" });

/**
 * The tenant column of the append-heavy tables (the event log, message events and their keys, outbox rows,
 * webhook deliveries, suppressions): no foreign key, because its check costs an index lookup and a lock on the
 * tenant's row per inserted row on the hottest paths (concurrent writers then share that lock through
 * multixacts). Deleting a tenant still removes their rows: the `tenants_delete_events` trigger deletes them
 * (migrations 0003, 0007 and 0012), and outbox rows go with their subscriptions.
 */
export const appendOnlyTenantId = () => uuid("tenant_id").notNull();

export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    name: text("name"),
    /** First characters of the key after `hk_`: finds the row without storing the key. */
    prefix: text("prefix").notNull(),
    /** Hex SHA-256 of the whole key. */
    keyHash: text("key_hash").notNull(),
    lastUsedAt: timestamptz("last_used_at"),
    revokedAt: timestamptz("revoked_at"),
    ...timestamps(),
  },
  (t) => [uniqueIndex("api_keys_prefix_key").on(t.prefix), index("api_keys_tenant_idx").on(t.tenantId)],
);

export const webhookSources = pgTable(
  "webhook_sources",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    provider: text("provider", { enum: providers }).notNull(),
    name: text("name").notNull(),
    /** Provider-specific secrets (public key, auth token…); null = unsigned deliveries accepted. */
    verification: jsonb("verification").$type<Record<string, string>>(),
    /** Sources are retired, not deleted, so their archived deliveries stay. */
    deletedAt: timestamptz("deleted_at"),
    ...timestamps(),
  },
  (t) => [index("webhook_sources_tenant_idx").on(t.tenantId, t.createdAt).where(sql`${t.deletedAt} is null`)],
);

/**
 * Tokens a provider's signed requests carry once (Mailgun's `signature.token`), kept until they could no
 * longer pass the timestamp check: a request whose token is here is a replay, refused by every process.
 */
export const webhookReplayTokens = pgTable(
  "webhook_replay_tokens",
  {
    sourceId: uuid("source_id")
      .notNull()
      .references(() => webhookSources.id, { onDelete: "cascade" }),
    token: text("token").notNull(),
    tenantId: tenantId(),
    expiresAt: timestamptz("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.sourceId, t.token] })],
);

/**
 * Secrets of the installation, shared by every process on the database: the key that signs list cursors
 * (so a cursor cannot be edited into another filter's or tenant's rows, and every API process accepts the
 * cursors of the others). Created on first use; not tenant-owned.
 */
export const instanceSecrets = pgTable("instance_secrets", {
  name: text("name").primaryKey(),
  secret: text("secret").notNull(),
  ...timestamps(),
});
