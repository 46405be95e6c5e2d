import { sql } from "drizzle-orm";
import type { Executor } from "../db/client.js";

/**
 * Mark webhook delivery `id` processed outside a claim (`herald reprocess`, in the transaction that stored
 * its events), whatever its queue state was; one a worker holds (`processing`) is left to that worker.
 */
export async function settleDelivery(executor: Executor, id: number): Promise<void> {
  await executor.execute(sql`update webhook_deliveries set status = 'completed', processed_at = now(), locked_by = null,
      locked_until = null, last_error = null, updated_at = now()
      where id = ${id} and status <> 'processing'`);
}
