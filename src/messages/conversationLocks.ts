import { lockKey, lockKeys } from "../db/advisoryLocks.js";
import type { Executor } from "../db/client.js";

/**
 * A conversation is its tenant, channel and participant address, and an outbound message belongs to its
 * recipient's. Registering a message moves its recipient's conversation, if there is one; the first inbound
 * message from an address creates the conversation, counting the messages sent there before. Under READ
 * COMMITTED each would miss the other's uncommitted rows (a message counted by neither, an activity time
 * lost), so both take a transaction-scoped lock on the address's bucket first, before the statement that
 * reads: whichever comes second sees the first.
 */
export const conversationLockNamespace = 0x4852434e; // "HRCN"
const buckets = 256;

/** The bucket of a conversation key; the address is normalized (as stored). */
export const conversationBucket = (tenantId: string, channel: string, address: string): number =>
  (lockKey(`${tenantId}|${channel}|${address}`) >>> 0) % buckets;

/** Take the buckets' locks (exclusive: two registrations moving the same conversations take turns). */
export const lockConversationBuckets = (executor: Executor, keys: number[]) =>
  lockKeys(executor, conversationLockNamespace, keys, "exclusive");
