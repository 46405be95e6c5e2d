import { randomBytes } from "node:crypto";
import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { classifyDbError } from "../db/errors.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { type Subscription, type SubscriptionSink, subscriptions } from "../db/schema/index.js";
import type { Page } from "../domain/cursor.js";
import { HeraldError } from "../errors.js";
import { notifyQueue } from "../queue/enqueue.js";
import { holdPending, releaseHeld } from "../queue/hold.js";
import { deleteSubscriptionRows } from "../queue/outbox.js";
import { outboxQueue } from "./outboxQueue.js";

export interface NewSubscription {
  name: string;
  /** Exact event types, prefix patterns (`message.*`) or `*`. */
  eventTypes: string[];
  sink: SubscriptionSink;
  /** Deliver events of one key (message id, else contact id) in order. @defaultValue false */
  ordered?: boolean;
  /** @defaultValue 5 */
  maxAttempts?: number;
}

/** A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes. */
export const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

export async function createSubscription(
  executor: Executor,
  tenantId: string,
  input: NewSubscription,
): Promise<Subscription> {
  try {
    const [row] = await executor
      .insert(subscriptions)
      .values({
        tenantId,
        name: input.name,
        eventTypes: input.eventTypes,
        sink: input.sink,
        secret: newSecret(),
        ordered: input.ordered ?? false,
        maxAttempts: input.maxAttempts ?? 5,
      })
      .returning();
    return row!;
  } catch (error) {
    if (classifyDbError(error) === "unique_violation") {
      throw new HeraldError("conflict", `A subscription named "${input.name}" already exists`);
    }
    throw error;
  }
}

export async function getSubscription(executor: Executor, tenantId: string, id: string) {
  const [row] = await executor
    .select()
    .from(subscriptions)
    .where(and(eq(subscriptions.tenantId, tenantId), eq(subscriptions.id, id)));
  return row;
}

export async function listSubscriptions(
  executor: Executor,
  tenantId: string,
  limit: number,
  cursor: string | undefined,
): Promise<Page<Subscription>> {
  const rows = await executor
    .select()
    .from(subscriptions)
    .where(
      and(
        eq(subscriptions.tenantId, tenantId),
        createdBefore(subscriptions.createdAt, subscriptions.id, cursor),
      ),
    )
    .orderBy(desc(subscriptions.createdAt), desc(subscriptions.id))
    .limit(limit + 1);
  return pageOf(rows, limit);
}

/**
 * Delete a subscription with its undelivered and dead deliveries, dead letters and delivery rollups
 * (cascade; its outbox rows first, see `deleteSubscriptionRows`), in one transaction (the caller's, if any).
 */
export async function deleteSubscription(executor: Executor, tenantId: string, id: string): Promise<boolean> {
  return executor.transaction(async (tx) => {
    await tx.execute(deleteSubscriptionRows(tenantId, id));
    const rows = await tx
      .delete(subscriptions)
      .where(and(eq(subscriptions.tenantId, tenantId), eq(subscriptions.id, id)))
      .returning({ id: subscriptions.id });
    return rows.length > 0;
  });
}

/**
 * Pause (deliveries wait, events keep queueing) or resume, in the caller's transaction. A paused
 * subscription's waiting rows are held (due at 'infinity', out of the claims' way) and made due again on
 * resume; rows a concurrent writer still queues as held are released by the dispatchers' upkeep
 * (`releaseHeld`). Undefined when there is no such subscription.
 */
export async function setPaused(executor: Executor, tenantId: string, id: string, paused: boolean) {
  const [row] = await executor
    .update(subscriptions)
    .set({ pausedAt: paused ? new Date() : null })
    .where(
      and(
        eq(subscriptions.tenantId, tenantId),
        eq(subscriptions.id, id),
        paused ? isNull(subscriptions.pausedAt) : undefined,
      ),
    )
    .returning();
  if (row && paused) {
    await executor.execute(holdPending(id));
  } else if (row) {
    const released = await query(executor, releaseHeld(sql`array[${id}::uuid]`));
    if (released.length > 0) await notifyQueue(executor, outboxQueue);
  }
  return row ?? (await getSubscription(executor, tenantId, id));
}
