import { toStoredEvent } from "../events/columns.js";
import type { StoredEvent } from "../events/types.js";
import type { QueueRow } from "../queue/row.js";
import type { SubscriptionTarget } from "./subscriptionCache.js";

/** One outbox row ready to send: the event and where it goes (both loaded by the claim itself). */
export interface Delivery {
  outboxId: number;
  attempt: number;
  replayId: string | null;
  event: StoredEvent;
  subscription: SubscriptionTarget;
}

/**
 * The message id receivers dedupe on: the event id, so retries (and dead-letter retries) are recognisable
 * as the same message; a replay adds its id, because a replay means "deliver again".
 */
export const messageId = (delivery: Delivery) =>
  delivery.replayId ? `${delivery.event.id}.${delivery.replayId}` : delivery.event.id;

const json = (value: unknown) => (typeof value === "string" ? JSON.parse(value) : value);

export class MissingEventError extends Error {
  override name = "MissingEventError";
}

/**
 * A claimed outbox row (with its `event` column, or, handed over by the writer, `stored_event`) and its
 * subscription as a Delivery.
 */
export function toDelivery(row: QueueRow, subscription: SubscriptionTarget | undefined): Delivery {
  const stored = row.stored_event as StoredEvent | undefined;
  const event = stored ?? (json(row.event) as Record<string, unknown> | null);
  if (!event || !subscription) {
    throw new MissingEventError(
      `outbox row ${row.id}: its ${event ? "subscription" : "event"} no longer exists`,
    );
  }
  return {
    outboxId: row.id,
    attempt: row.attempts,
    replayId: (row.replay_id as string | null) ?? null,
    event: stored ?? toStoredEvent(event as Record<string, unknown>),
    subscription,
  };
}
