import { sql } from "drizzle-orm";
import type { MissedPolicy } from "../domain/schedule.js";
import type { Lease } from "./row.js";

/**
 * The state changes of `scheduled_actions` rows besides the claim engine's own (claim, complete, fail, reap):
 * scheduling an action, staging a repeating action's next slot, cancelling. Pure: the caller runs them (in its
 * own transaction) and wakes the workers once committed (`notifyQueue` / `QueueWakeups`).
 */

/** A new scheduled action, as queued. */
export interface QueuedAction {
  tenantId: string;
  action: string;
  payload: Record<string, unknown>;
  /** The first slot (a one-off's only one). */
  runAt: Date;
  every: string | null;
  cron: string | null;
  timeZone: string | null;
  missed: MissedPolicy;
  key: string | null;
  maxAttempts: number;
}

/**
 * Queue an action once per tenant + key (a row without a key is always new): due at its first slot, with
 * `max_attempts` attempts for it (and as many for each later slot). Returns the row, or the stored row of
 * the same key with `duplicate` true (`action_id` of either); no row at all means a row with that key committed while this
 * statement ran (read it with `storedAction`).
 */
export const enqueueScheduled = (a: QueuedAction) => {
  const runAt = a.runAt.toISOString();
  return sql`with inserted as (
      insert into scheduled_actions (action_id, tenant_id, action_type, payload, run_at, dedupe_key, every, cron,
        time_zone, missed, status, next_attempt_at, max_attempts, slot_max_attempts)
      values (herald_uuidv7(), ${a.tenantId}, ${a.action}, ${JSON.stringify(a.payload)}::jsonb, ${runAt}::timestamptz, ${a.key},
        ${a.every}, ${a.cron}, ${a.timeZone}, ${a.missed}, 'pending', ${runAt}::timestamptz, ${a.maxAttempts},
        ${a.maxAttempts})
      on conflict (tenant_id, dedupe_key) where dedupe_key is not null do nothing
      returning action_id
    )
    select action_id, false as duplicate from inserted
    union all
    select action_id, true as duplicate from scheduled_actions
    where ${a.key === null ? sql`false` : sql`tenant_id = ${a.tenantId} and dedupe_key = ${a.key}`}
      and not exists (select 1 from inserted)`;
};

/** The stored action of a key (see `enqueueScheduled`). */
export const storedAction = (tenantId: string, key: string) =>
  sql`select action_id, true as duplicate from scheduled_actions where tenant_id = ${tenantId} and dedupe_key = ${key}`;

/** A repeating action's claimed slot and what follows it (see `stageNextSlots`). */
export interface StagedSlot extends Lease {
  lockedBy: string;
  /** The next slot; null: none (cancelled). */
  next: Date | null;
  /** When the slot ran; null: it did not (skipped as missed, or cancelled). */
  ranAt: Date | null;
}

/**
 * Inside the transaction that runs repeating actions' slots, before its completion: stage each one's next
 * slot, which the completion then takes (see `scheduledActionsQueue`), and note when it ran — only while the
 * claim is still the worker's, which also locks the rows for the rest of the transaction. Returns the ids
 * whose lease held.
 */
export const stageNextSlots = (slots: StagedSlot[]) =>
  sql`update scheduled_actions t set following_run_at = s.next, last_run_at = coalesce(s.ran_at, t.last_run_at)
    from jsonb_to_recordset(${JSON.stringify(
      slots.map((s) => ({
        id: s.id,
        attempts: s.attempts,
        locked_by: s.lockedBy,
        next: s.next?.toISOString() ?? null,
        ran_at: s.ranAt?.toISOString() ?? null,
      })),
    )}::jsonb) as s(id bigint, attempts int, locked_by text, next timestamptz, ran_at timestamptz)
    where t.id = s.id and t.attempts = s.attempts and t.locked_by = s.locked_by and t.status = 'processing'
    returning t.id`;

/**
 * Cancel an action of the tenant: a waiting one is finished at once; a running repeating one is marked, so
 * its current slot completes without a next one (the completion sees the mark, as it waits for this
 * statement's row lock). A one-off that is running or has run is left alone (no row is returned). Cancelling
 * again changes nothing and returns the row.
 */
export const cancelScheduled = (tenantId: string, actionId: string, now: Date) =>
  sql`update scheduled_actions set cancelled_at = coalesce(cancelled_at, ${now.toISOString()}::timestamptz),
      status = case when status = 'pending' then 'completed' else status end,
      updated_at = ${now.toISOString()}::timestamptz
    where tenant_id = ${tenantId} and action_id = ${actionId}
      and (cancelled_at is not null or status = 'pending' or every is not null or cron is not null)
    returning action_id`;
