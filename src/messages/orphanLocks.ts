import { lockKey, lockKeys } from "../db/advisoryLocks.js";
import type { Executor } from "../db/client.js";
import { messageIdRoot } from "../domain/messageIds.js";

/**
 * Registering a message and storing its first events can run at the same moment; under READ COMMITTED
 * each would miss the other's uncommitted row and the events would stay unlinked for good. Both take a
 * transaction-scoped advisory lock on the message id's bucket first — processors shared (they do not block
 * each other), registration exclusive — so whichever commits second sees the first.
 */
export const orphanLockNamespace = 0x48524c4b; // "HRLK"
const buckets = 256;

/**
 * The bucket of a provider message id, by its root (the text before the first "."), which a registered id
 * shares with every event id it links: a registration and the events it links take the same lock.
 */
export function orphanBucket(
  tenantId: string,
  provider: string,
  providerMessageId: string | null | undefined,
): number | null {
  if (!providerMessageId) return null;
  return (lockKey(`${tenantId}|${provider}|${messageIdRoot(providerMessageId)}`) >>> 0) % buckets;
}

/** Take the buckets' locks (processors shared, registration exclusive). */
export const lockOrphanBuckets = (
  executor: Executor,
  keys: (number | null)[],
  mode: "shared" | "exclusive",
) => lockKeys(executor, orphanLockNamespace, keys, mode);
