import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { AckOptions, QueueDefinition } from "./definitions.js";
import { at, type Lease, relaxedCommit } from "./row.js";

export interface Failure extends Lease {
  error: string;
  /** Delay before the next attempt (from the backoff schedule). */
  delayMs: number;
}

export interface FailOutcome {
  id: number;
  status: "pending" | "dead";
  attempts: number;
  nextAttemptAt: string;
}

const maxErrorLength = 4000;

/**
 * Fail a batch under the same lease check as completion: each row goes back to pending after its delay, or,
 * with its attempts used up, becomes dead — and, for queues with a dead-letter table, a dead-letter row in
 * the same statement.
 */
export async function failBatch(
  executor: Executor,
  queue: QueueDefinition,
  workerId: string,
  failures: Failure[],
  nowDate: Date,
  options: AckOptions = {},
): Promise<FailOutcome[]> {
  if (failures.length === 0) return [];
  const now = at(nowDate);
  const input = JSON.stringify(
    failures.map((f) => ({
      id: f.id,
      attempts: f.attempts,
      error: f.error.slice(0, maxErrorLength),
      delay_ms: f.delayMs,
    })),
  );
  const rows = await query<{
    id: string;
    status: "pending" | "dead";
    attempts: number;
    next_attempt_at: string;
  }>(
    executor,
    sql`with f as (
      select * from jsonb_to_recordset(${input}::jsonb) as f(id bigint, attempts int, error text, delay_ms int)
    ), failed as (
      update ${queue.table} t set
        status = case when t.attempts >= t.max_attempts then 'dead' else 'pending' end,
        next_attempt_at = ${now} + f.delay_ms * interval '1 millisecond',
        last_error = f.error, locked_by = null, locked_until = null, updated_at = ${now}
        ${queue.failSet ? queue.failSet(now) : sql``}
      from f where t.id = f.id and t.attempts = f.attempts and t.locked_by = ${workerId} and t.status = 'processing' ${options.relaxedCommit ? sql`and ${relaxedCommit}` : sql``}
      returning t.*
    )${queue.onDead ? sql`, dead_letters as (${queue.onDead(sql`(select * from failed where status = 'dead')`)})` : sql``}
    select id, status, attempts, next_attempt_at::text from failed`,
    { prepare: true },
  );
  return rows.map((r) => ({
    id: Number(r.id),
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: r.next_attempt_at,
  }));
}
