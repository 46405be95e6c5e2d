import { type SQL, sql } from "drizzle-orm";

/**
 * Holding and releasing the pending outbox rows of paused subscriptions: a held row is due at 'infinity', out
 * of the way of claims. Pure builders; the caller runs them in its transaction.
 */

/** Hold the pending rows of subscription `id`. */
export const holdPending = (id: string) =>
  sql`update outbox set next_attempt_at = 'infinity', updated_at = now()
      where subscription_id = ${id} and status = 'pending' and next_attempt_at <> 'infinity'`;

/** Make the held rows (due at 'infinity') of the subscriptions in `ids` (a uuid[] expression) due now. */
export const releaseHeld = (ids: SQL) => sql`update outbox o set next_attempt_at = now(), updated_at = now()
  where o.subscription_id = any (${ids}) and o.status = 'pending' and o.next_attempt_at = 'infinity'
  returning 1`;
