import { type SQL, sql } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import { inboundEvents, outbox, scheduledActions, webhookDeliveries } from "../db/schema/index.js";

/**
 * A table the claim engine works: any table with the shared queue columns. Table names come from this
 * closed list, never from input.
 */
export interface QueueDefinition {
  name: string;
  table: PgTable;
  /** NOTIFY channel that wakes this queue's workers. */
  channel: string;
  /** Extra condition a row must meet to be claimed (`q` is the candidate row). */
  claimFilter?: SQL;
  /** Extra assignments when a row completes (e.g. the time it was delivered). */
  completeSet?: (now: SQL) => SQL;
  /** Statement run (as a CTE over the `dead` rows) when rows become dead letters. */
  onDead?: (dead: SQL) => SQL;
}

const channelOf = (name: string) => `herald_queue_${name}`;

export const webhookDeliveriesQueue: QueueDefinition = {
  name: "webhook_deliveries",
  table: webhookDeliveries,
  channel: channelOf("webhook_deliveries"),
  completeSet: (now) => sql`, processed_at = ${now}`,
};

export const inboundEventsQueue: QueueDefinition = {
  name: "inbound_events",
  table: inboundEvents,
  channel: channelOf("inbound_events"),
};

export const scheduledActionsQueue: QueueDefinition = {
  name: "scheduled_actions",
  table: scheduledActions,
  channel: channelOf("scheduled_actions"),
};

/**
 * The outbox: rows of paused subscriptions wait; on ordered subscriptions only the oldest pending row of a
 * key may be claimed, and none while another row of that key is in flight. Dead rows become
 * `dead_letters` rows in the same statement.
 */
export const outboxQueue: QueueDefinition = {
  name: "outbox",
  table: outbox,
  channel: channelOf("outbox"),
  completeSet: (now) => sql`, delivered_at = ${now}`,
  // Paused subscriptions as an init-plan array (computed once per claim), not a join: the claim then stays
  // an ordered scan of the pending-rows index.
  claimFilter: sql`q.subscription_id <> all (array(select s.id from subscriptions s where s.paused_at is not null))
    and (q.ordering_key is null or (
      not exists (select 1 from outbox b where b.subscription_id = q.subscription_id
        and b.ordering_key = q.ordering_key and b.status = 'processing')
      and not exists (select 1 from outbox b where b.subscription_id = q.subscription_id
        and b.ordering_key = q.ordering_key and b.status = 'pending' and b.id < q.id)))`,
  onDead: (dead) => sql`insert into dead_letters (tenant_id, subscription_id, outbox_id, event_id, event_type, attempts, last_error, failed_at)
    select d.tenant_id, d.subscription_id, d.id, d.event_id, d.event_type, d.attempts, d.last_error, d.updated_at from ${dead} d
    on conflict (outbox_id) do update set attempts = excluded.attempts, last_error = excluded.last_error,
      failed_at = excluded.failed_at, retried_at = null, updated_at = excluded.failed_at`,
};

export const queues = [webhookDeliveriesQueue, inboundEventsQueue, scheduledActionsQueue, outboxQueue];
