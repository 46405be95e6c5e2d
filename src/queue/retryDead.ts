import { type SQL, sql } from "drizzle-orm";
import { dueFor, handlerOf } from "./outbox.js";

/**
 * Make dead outbox rows pending again with fresh attempts, due now (or held, for a paused subscription) and
 * routed by their subscription's current sink. `chosen` is a data-modifying query returning `outbox_id`
 * (the dead letters being retried); the statement returns the `id` of each outbox row it revived. Pure: the
 * caller runs it in its own transaction and wakes the claims (`notifyQueue`).
 */
export const retryDeadOutbox = (chosen: SQL) => sql`with chosen as (
      ${chosen}
    )
    update outbox o set status = 'pending', attempts = 0, next_attempt_at = ${dueFor("s")}, last_error = null,
      locked_by = null, locked_until = null, handler = ${handlerOf("s")}, updated_at = now()
    from chosen c, subscriptions s
    where o.id = c.outbox_id and s.id = o.subscription_id and o.status = 'dead'
    returning o.id`;
