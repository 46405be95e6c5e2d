import { sql } from "drizzle-orm";
import type { Executor } from "../db/client.js";

/**
 * Registering a message and storing its first events can run at the same moment; under READ COMMITTED
 * each would miss the other's uncommitted row and the events would stay unlinked for good. Both take a
 * transaction-scoped advisory lock on the message id's bucket first — processors shared (they do not block
 * each other), registration exclusive — so whichever commits second sees the first.
 */
const lockNamespace = 0x48524c4b; // "HRLK"
const buckets = 256;

/** The bucket of a provider message id (by its X-Message-Id part, the part before the first "."). */
export function orphanBucket(
  tenantId: string,
  provider: string,
  providerMessageId: string | null | undefined,
): number | null {
  if (!providerMessageId) return null;
  const text = `${tenantId}|${provider}|${providerMessageId.split(".")[0]}`;
  let hash = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % buckets;
}

/** Take the buckets' locks in ascending order (no deadlocks between transactions taking several). */
export async function lockOrphanBuckets(
  executor: Executor,
  keys: (number | null)[],
  mode: "shared" | "exclusive",
) {
  const sorted = [...new Set(keys.filter((k): k is number => k !== null))].sort((a, b) => a - b);
  if (sorted.length === 0) return;
  const lock = mode === "shared" ? sql.raw("pg_advisory_xact_lock_shared") : sql.raw("pg_advisory_xact_lock");
  await executor.execute(
    sql`select ${lock}(${lockNamespace}, b) from unnest(${`{${sorted.join(",")}}`}::int[]) as b order by b`,
  );
}
