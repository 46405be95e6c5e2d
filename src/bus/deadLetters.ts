import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { after } from "../db/keyset.js";
import type { AttemptError } from "../db/schema/index.js";
import { isoText } from "../db/timestamps.js";
import { type Page, pageFrom } from "../domain/cursor.js";
import { notifyQueue } from "../queue/enqueue.js";
import { retryDeadOutbox } from "../queue/retryDead.js";
import { outboxQueue } from "./outboxQueue.js";

export interface DeadLetterView {
  id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  attempts: number;
  last_error: string | null;
  failed_at: string;
}

export interface DeadLetterFilter {
  subscriptionId?: string | undefined;
  eventType?: string | undefined;
  /** A single dead letter. */
  id?: string | undefined;
}

const iso = (column: string) => sql.raw(isoText(column));

export async function listDeadLetters(
  executor: Executor,
  tenantId: string,
  filter: DeadLetterFilter,
  limit: number,
  cursor: string | undefined,
): Promise<Page<DeadLetterView>> {
  const position = after("dead_letters", "failed_at", "id", cursor);
  const rows = await query<DeadLetterView>(
    executor,
    sql`select id, subscription_id, event_id, event_type, attempts, last_error, ${iso("failed_at")} as failed_at
    from dead_letters
    where tenant_id = ${tenantId} and retried_at is null
      ${filter.subscriptionId ? sql`and subscription_id = ${filter.subscriptionId}` : sql``}
      ${filter.eventType ? sql`and event_type = ${filter.eventType}` : sql``}
      ${position ? sql`and ${position}` : sql``}
    order by failed_at desc nulls last, id desc nulls last
    limit ${limit + 1}`,
  );
  return pageFrom(rows, limit, (row) => ({ at: row.failed_at, id: row.id }));
}

/** A dead letter with when it was retried (null until it was) and each failed attempt's error, oldest first. */
export interface DeadLetterDetail extends DeadLetterView {
  retried_at: string | null;
  attempt_errors: AttemptError[];
}

/** One dead letter of the tenant, retried or not (`retried_at`), or undefined. */
export async function getDeadLetter(
  executor: Executor,
  tenantId: string,
  id: string,
): Promise<DeadLetterDetail | undefined> {
  const [row] = await query<DeadLetterDetail>(
    executor,
    sql`select id, subscription_id, event_id, event_type, attempts, last_error, ${iso("failed_at")} as failed_at,
      ${iso("retried_at")} as retried_at, attempt_errors
    from dead_letters where tenant_id = ${tenantId} and id = ${id}`,
  );
  if (!row) return undefined;
  const errors = row.attempt_errors as unknown;
  return { ...row, attempt_errors: typeof errors === "string" ? JSON.parse(errors) : (errors ?? []) };
}

/**
 * Send dead letters back to their subscription: the outbox row is pending again with fresh attempts, and the
 * dead letter is marked retried (kept as history). One statement for one or many.
 */
export async function retryDeadLetters(
  executor: Executor,
  tenantId: string,
  filter: DeadLetterFilter,
): Promise<number> {
  const rows = await query<{ id: string }>(
    executor,
    retryDeadOutbox(sql`update dead_letters set retried_at = now(), updated_at = now()
      where tenant_id = ${tenantId} and retried_at is null
        ${filter.id ? sql`and id = ${filter.id}` : sql``}
        ${filter.subscriptionId ? sql`and subscription_id = ${filter.subscriptionId}` : sql``}
        ${filter.eventType ? sql`and event_type = ${filter.eventType}` : sql``}
      returning outbox_id`),
  );
  if (rows.length > 0) await notifyQueue(executor, outboxQueue);
  return rows.length;
}
