import { integer, jsonb, pgTable, text, uniqueIndex } from "drizzle-orm/pg-core";
import { timestamps, timestamptz, uuidPk } from "./columns.js";
import { tenantId } from "./tenancy.js";

/** Verified "from" addresses a tenant sends with. */
export const emailSenderIdentities = pgTable(
  "email_sender_identities",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    fromEmail: text("from_email").notNull(),
    fromName: text("from_name"),
    replyTo: text("reply_to"),
    provider: text("provider"),
    status: text("status").notNull().default("pending"),
    verifiedAt: timestamptz("verified_at"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>(),
    ...timestamps(),
  },
  (t) => [uniqueIndex("email_sender_identities_tenant_from_key").on(t.tenantId, t.fromEmail)],
);

/** Fixed-window send counters per scope (sender, domain, provider…). */
export const sendRateLimits = pgTable(
  "send_rate_limits",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    windowSeconds: integer("window_seconds").notNull(),
    maxCount: integer("max_count").notNull(),
    currentCount: integer("current_count").notNull().default(0),
    windowStartedAt: timestamptz("window_started_at").notNull().defaultNow(),
    ...timestamps(),
  },
  (t) => [uniqueIndex("send_rate_limits_scope_key").on(t.tenantId, t.scope, t.key)],
);

/** Results of address validation, cached per provider. */
export const emailValidationResults = pgTable(
  "email_validation_results",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    email: text("email").notNull(),
    provider: text("provider").notNull(),
    result: text("result").notNull(),
    reason: text("reason"),
    checkedAt: timestamptz("checked_at").notNull().defaultNow(),
    raw: jsonb("raw"),
    ...timestamps(),
  },
  (t) => [uniqueIndex("email_validation_results_email_key").on(t.tenantId, t.email, t.provider)],
);
