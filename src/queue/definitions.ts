import { type SQL, sql } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import { inboundEvents, scheduledActions, webhookDeliveries } from "../db/schema/index.js";

/**
 * A table the claim engine works: any table with the shared queue columns. Table names come from this
 * closed list, never from input.
 */
export interface QueueDefinition {
  name: string;
  table: PgTable;
  /** NOTIFY channel that wakes this queue's workers. */
  channel: string;
  /**
   * Extra condition a row must meet to be claimed (`q` is the candidate row). It may hold placeholders
   * (`sql.placeholder`), filled from the worker's `claimValues`, else from `claimDefaults`.
   */
  claimFilter?: SQL;
  claimDefaults?: Record<string, unknown>;
  /**
   * For a queue claimed in lanes, each with its own index (see `queueIndexes`). `of` names the lanes a worker
   * takes, from its claim values; `candidates` is, for those lanes, a query over the table aliased `q`
   * returning `id, next_attempt_at` of up to `limit` rows of each lane, each lane an ordered scan of rows
   * meeting `due` (status, time and `claimFilter`) locked `for update skip locked`. The claim is built once
   * per set of lanes, which its text names: PostgreSQL then plans it once too, instead of on every call.
   */
  claimLanes?: {
    of: (values: Record<string, unknown>) => string;
    candidates: (lanes: string, parts: { due: SQL; limit: SQL }) => SQL;
  };
  /**
   * Conditions that split pending rows among the claim's partial indexes (`outbox`: remote rows and
   * handlers' rows), so counting them reads those indexes, not the table. @defaultValue one lane, `true`
   */
  pendingLanes?: SQL[];
  /** Extra columns returned by a claim (`t` is the claimed row), to save the worker a round trip. */
  claimReturning?: SQL;
  /** Upkeep run with each reap of expired leases; rows it returns mean rows became due (the worker claims). */
  onReap?: SQL;
  /**
   * The status a completed row takes (`t` is the row): a queue whose rows repeat may send one back to pending.
   * @defaultValue `'completed'`
   */
  completeStatus?: SQL;
  /** Extra assignments when a row completes (e.g. the time it was processed). */
  completeSet?: (now: SQL) => SQL;
  /**
   * A completed row is deleted instead of kept as `completed` (`completeStatus` and `completeSet` then do not
   * apply): the table holds only work to do, in flight and dead. What must outlive the row goes in
   * `onComplete`, in the same statement. @defaultValue false
   */
  completeDeletes?: boolean;
  /**
   * Statement run (as a CTE over the `completed` rows — all their columns, as deleted or as updated — and
   * `now`, the completion time) when rows complete: in the completion's statement, so whatever it records
   * is recorded exactly when, and only if, the row completes.
   */
  onComplete?: (completed: SQL, now: SQL) => SQL;
  /**
   * Extra assignments when a row fails (`t` the row before the update, `f.error` the attempt's error, `now`
   * the time): the outbox records each attempt's error.
   */
  failSet?: (now: SQL) => SQL;
  /** Statement run (as a CTE over the `dead` rows) when rows become dead letters. */
  onDead?: (dead: SQL) => SQL;
}

export const channelOf = (name: string) => `herald_queue_${name}`;

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

/**
 * A repeating action whose slot ran has its next slot staged (`stageNextSlot`): its completion moves the row
 * there — pending again, due then, with a fresh set of attempts — in the transaction of the slot's effects,
 * unless it was cancelled meanwhile. `attempts` keeps counting across slots (only `max_attempts` grows), so
 * the lease token of a claim is never seen again on the row: a late worker cannot complete a later slot.
 */
const advances = sql`(t.following_run_at is not null and t.cancelled_at is null)`;

export const scheduledActionsQueue: QueueDefinition = {
  name: "scheduled_actions",
  table: scheduledActions,
  channel: channelOf("scheduled_actions"),
  completeStatus: sql`case when ${advances} then 'pending' else 'completed' end`,
  completeSet: (now) =>
    sql`, last_run_at = case when t.every is null and t.cron is null then ${now} else t.last_run_at end,
      run_at = case when ${advances} then t.following_run_at else t.run_at end,
      next_attempt_at = case when ${advances} then t.following_run_at else t.next_attempt_at end,
      max_attempts = case when ${advances} then t.attempts + t.slot_max_attempts else t.max_attempts end,
      following_run_at = null`,
};

export interface AckOptions {
  /**
   * Commit without waiting for the WAL flush (see `relaxedCommit`). Only for a statement that is its own
   * transaction, as the worker's batched acknowledgements are; never inside a caller's transaction.
   */
  relaxedCommit?: boolean;
}
