import { sql } from "drizzle-orm";
import { channelOf } from "./definitions.js";

/**
 * The outbox's rules for a new row, written once for every statement that queues one: the log's append
 * (`events/append.ts`), replays and dead-letter retries (`bus/`). The outbox's claim is defined in
 * `bus/outboxQueue.ts`.
 */

/** NOTIFY channel that wakes the outbox's dispatchers. */
export const outboxChannel = channelOf("outbox");

/**
 * When a new outbox row of subscription `s` (an alias in scope) is due: now, or never while the subscription
 * is paused ('infinity' keeps the row out of the way of claims; resuming makes it due).
 */
export const dueFor = (s: string) =>
  sql`case when ${sql.identifier(s)}.paused_at is null then now() else 'infinity'::timestamptz end`;

/** The handler name a new outbox row of subscription `s` (an alias in scope) carries: null for other sinks. */
export const handlerOf = (s: string) =>
  sql`case when ${sql.identifier(s)}.sink->>'type' = 'handler' then ${sql.identifier(s)}.sink->>'name' end`;

/**
 * Delete the outbox rows of subscription `id` (of `tenantId`), before the subscription itself. Its cascade
 * would delete them too, but only once it holds the subscription's row, which an acknowledgement of one of
 * them needs as well (the row's rollup refers to the subscription): each would wait for the other. Deleted
 * first, a row being acknowledged is waited for before the subscription is touched. Pure.
 */
export const deleteSubscriptionRows = (tenantId: string, id: string) =>
  sql`delete from outbox where tenant_id = ${tenantId} and subscription_id = ${id}`;
