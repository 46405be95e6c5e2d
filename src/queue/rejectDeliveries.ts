import { sql } from "drizzle-orm";
import { unnestColumns } from "../db/arrays.js";
import type { Executor } from "../db/client.js";

/**
 * Mark archived webhook deliveries whose body the processor could not read as rejected, each with its reason
 * (as the door marks what it refuses: visible, and left out of `herald reprocess`), in the caller's
 * transaction. Their queue state is left to the claim that holds them.
 */
export async function rejectDeliveries(
  executor: Executor,
  rejected: readonly { id: number; reason: string }[],
): Promise<void> {
  if (rejected.length === 0) return;
  await executor.execute(sql`update webhook_deliveries d set rejected_reason = r.reason
    from ${unnestColumns("r", [
      { name: "id", type: "bigint", values: rejected.map((r) => r.id) },
      { name: "reason", type: "text", values: rejected.map((r) => r.reason) },
    ])}
    where d.id = r.id`);
}
