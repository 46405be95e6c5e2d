import { sql } from "drizzle-orm";
import { index, integer, jsonb, pgTable, text, unique, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { missedPolicies } from "../../domain/schedule.js";
import { campaignStatuses, channels } from "../../domain/vocabularies.js";
import { queueColumns, queueIndexes, queuePk, timestamps, timestamptz, uuidPk } from "./columns.js";
import { emailSenderIdentities } from "./senders.js";
import { tenantId } from "./tenancy.js";

/** One contact's run through an outreach plan on one channel. */
export const contactCampaigns = pgTable(
  "contact_campaigns",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    contactId: text("contact_id").notNull(),
    leadId: text("lead_id"),
    ownerUserId: text("owner_user_id"),
    channel: text("channel", { enum: channels }).notNull(),
    status: text("status", { enum: campaignStatuses }).notNull().default("draft"),
    senderIdentityId: uuid("sender_identity_id").references(() => emailSenderIdentities.id, {
      onDelete: "set null",
    }),
    planJson: jsonb("plan_json").$type<Record<string, unknown>>().notNull().default({}),
    planHash: text("plan_hash"),
    currentStep: integer("current_step").notNull().default(0),
    startedAt: timestamptz("started_at"),
    stoppedAt: timestamptz("stopped_at"),
    stopReason: text("stop_reason"),
    ...timestamps(),
  },
  (t) => [
    uniqueIndex("contact_campaigns_contact_channel_key").on(t.tenantId, t.contactId, t.channel),
    index("contact_campaigns_plan_json_idx").using("gin", t.planJson),
    index("contact_campaigns_status_idx").on(t.tenantId, t.status),
  ],
);

export const campaignPlanVersions = pgTable(
  "campaign_plan_versions",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    campaignId: uuid("campaign_id")
      .notNull()
      .references(() => contactCampaigns.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    planJson: jsonb("plan_json").$type<Record<string, unknown>>().notNull(),
    planHash: text("plan_hash").notNull(),
    ...timestamps(),
  },
  (t) => [uniqueIndex("campaign_plan_versions_version_key").on(t.campaignId, t.version)],
);

/** Audit trail of campaign status changes; `cause_key` makes an effect idempotent (one row per cause). */
export const campaignTransitions = pgTable(
  "campaign_transitions",
  {
    id: uuidPk(),
    tenantId: tenantId(),
    campaignId: uuid("campaign_id")
      .notNull()
      .references(() => contactCampaigns.id, { onDelete: "cascade" }),
    fromStatus: text("from_status", { enum: campaignStatuses }),
    toStatus: text("to_status", { enum: campaignStatuses }).notNull(),
    reason: text("reason"),
    causeKey: text("cause_key"),
    ...timestamps(),
  },
  (t) => [
    unique("campaign_transitions_cause_key").on(t.campaignId, t.causeKey),
    index("campaign_transitions_campaign_idx").on(t.campaignId, t.createdAt),
  ],
);

/**
 * Work to run later (src/scheduler/), claimed by the queue engine: one row per action. A one-off action
 * runs at `run_at`; a repeating one (`every` or `cron`) keeps one row whose `run_at` is its current slot —
 * the transaction that runs a slot also moves the row to its next slot (`following_run_at`, staged by the
 * handler, taken on completion), so each slot runs once. `action_id` is the API's id.
 */
export const scheduledActions = pgTable(
  "scheduled_actions",
  {
    id: queuePk(),
    /** Set for the scheduler's actions (`enqueueScheduled`); rows queued otherwise have none. */
    actionId: uuid("action_id"),
    tenantId: tenantId(),
    campaignId: uuid("campaign_id").references(() => contactCampaigns.id, { onDelete: "cascade" }),
    actionType: text("action_type").notNull(),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull().default({}),
    runAt: timestamptz("run_at").notNull(),
    dedupeKey: text("dedupe_key"),
    /** A repeating action's interval as given (seconds or an ISO 8601 duration). */
    every: text("every"),
    /** A repeating action's five-field cron expression, in `time_zone` (UTC when null). */
    cron: text("cron"),
    timeZone: text("time_zone"),
    missed: text("missed", { enum: missedPolicies }).notNull().default("skip"),
    /** Attempts each slot of a repeating action gets (`max_attempts` grows by this per slot). */
    slotMaxAttempts: integer("slot_max_attempts").notNull().default(5),
    /** The next slot, written by the transaction running the current one and taken by its completion. */
    followingRunAt: timestamptz("following_run_at"),
    /** When the action last ran (a slot that was skipped does not count). */
    lastRunAt: timestamptz("last_run_at"),
    cancelledAt: timestamptz("cancelled_at"),
    ...queueColumns(),
    ...timestamps(),
  },
  (t) => [
    index("scheduled_actions_run_at_pending_idx").on(t.runAt).where(sql`${t.status} = 'pending'`),
    ...queueIndexes("scheduled_actions", t),
    // Partial: rows without a key (most) cost no entry, and the queue's state changes, which are never HOT,
    // do not each add one.
    uniqueIndex("scheduled_actions_dedupe_key")
      .on(t.tenantId, t.dedupeKey)
      .where(sql`${t.dedupeKey} is not null`),
    // The API's id. Partial, like the dedupe key: every queue state change of a row is a non-HOT update that
    // adds an entry to each index the row is in, so rows used as a plain queue (without an id) cost nothing.
    uniqueIndex("scheduled_actions_action_id_key")
      .on(t.tenantId, t.actionId)
      .where(sql`${t.actionId} is not null`),
  ],
);
