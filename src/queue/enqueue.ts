import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import type { QueueDefinition } from "./definitions.js";

/**
 * Wake the queue's workers when the caller's transaction commits. Identical notifications within one
 * transaction are folded into one by PostgreSQL, so this costs one NOTIFY per transaction however many
 * rows it enqueued.
 */
export async function notifyQueue(executor: Executor, queue: QueueDefinition): Promise<void> {
  // Prepared: one round trip, not two (a parse-and-describe first), on the busy paths' wake-ups.
  await query(executor, sql`select pg_notify(${queue.channel}, '')`, { prepare: true });
}

/** Insert queue rows (in the caller's transaction) and wake the workers at commit. */
export async function enqueue(
  executor: Executor,
  queue: QueueDefinition,
  rows: Record<string, unknown>[],
): Promise<void> {
  if (rows.length === 0) return;
  // biome-ignore lint/suspicious/noExplicitAny: the row shape is the queue table's insert type
  await executor.insert(queue.table).values(rows as any);
  await notifyQueue(executor, queue);
}
