import { pgArray } from "../db/arrays.js";
import type { Database, Db } from "../db/client.js";
import type { BackoffOptions } from "../domain/backoff.js";
import { type Clock, systemClock } from "../domain/clock.js";
import type { LocalHandOver } from "../queue/handOver.js";
import { Worker } from "../queue/worker.js";
import { type Delivery, toDelivery } from "./delivery.js";
import { noHandlers, outboxQueue } from "./outboxQueue.js";
import type { DestinationPolicy } from "./sinks/destination.js";
import type { HandlerRegistry } from "./sinks/handlers.js";
import type { NatsPublisher } from "./sinks/nats.js";
import { sendWebhook } from "./sinks/webhook.js";
import { SubscriptionCache } from "./subscriptionCache.js";

export interface DispatcherOptions {
  db: Db;
  listen?: Database["listen"];
  handlers: HandlerRegistry;
  /** Needed only when a subscription has a NATS sink. */
  nats?: NatsPublisher;
  /** @defaultValue 10000 */
  webhookTimeoutMs?: number;
  /** Where webhook sinks may connect. @defaultValue `denyAll`: public addresses only */
  destinations?: DestinationPolicy;
  /** How long a subscription's sink and secret are cached. @defaultValue 1000 */
  subscriptionCacheMs?: number;
  batchSize?: number;
  parallelClaims?: number;
  concurrency?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  workerId?: string;
  /**
   * This process's hand-over from its event writers (`new LocalHandOver(db)`, the same object given to
   * `writeEvents`): the dispatcher registers with it and takes its handlers' deliveries straight from the
   * writes, without a NOTIFY and a claim.
   */
  handOver?: LocalHandOver;
}

/** Send one delivery to its subscription's sink. */
export async function deliver(
  delivery: Delivery,
  options: Pick<DispatcherOptions, "handlers" | "nats" | "webhookTimeoutMs" | "destinations">,
) {
  const sink = delivery.subscription.sink;
  switch (sink.type) {
    case "handler":
      return options.handlers.deliver(sink.name, delivery);
    case "webhook":
      return sendWebhook(sink.url, delivery, {
        timeoutMs: options.webhookTimeoutMs ?? 10_000,
        destinations: options.destinations,
      });
    case "nats":
      if (!options.nats)
        throw new Error("NATS sink used but no NATS publisher is configured (HERALD_NATS_URL)");
      await options.nats.publish(sink.subject, delivery);
      return;
  }
}

/**
 * The outbox worker: claims deliveries (at least once), sends each to its sink with bounded concurrency, and
 * acknowledges, retries with backoff or dead-letters them through the claim engine. Ordered subscriptions
 * are kept in order by the claim itself.
 */
export function createDispatcher(options: DispatcherOptions): Worker {
  if (options.handOver && options.handOver.db !== options.db)
    throw new Error("createDispatcher: the hand-over belongs to another Db than the dispatcher's");
  const subscriptions = new SubscriptionCache(options.db, options.subscriptionCacheMs ?? 1000, options.clock);
  const worker = new Worker({
    queue: outboxQueue,
    db: options.db,
    listen: options.listen,
    batchSize: options.batchSize,
    parallelClaims: options.parallelClaims,
    concurrency: options.concurrency,
    leaseMs: options.leaseMs,
    pollIntervalMs: options.pollIntervalMs,
    backoff: options.backoff,
    clock: options.clock,
    workerId: options.workerId,
    claimValues: () => ({ handlers: pgArray(options.handlers.names()) ?? noHandlers }),
    handler: {
      mode: "at-least-once",
      handle: async (row) =>
        deliver(toDelivery(row, await subscriptions.get(row.subscription_id as string)), options),
    },
  });
  // Writers given the same hand-over hand deliveries of its handlers over directly (see queue/handOver.ts).
  const clock = options.clock ?? systemClock;
  options.handOver?.register({
    workerId: worker.id,
    leaseMs: worker.leaseMs,
    now: () => clock.now(),
    handlerNames: () => options.handlers.names(),
    canAdopt: (count) => worker.canAdopt(count),
    adopt: (rows) => worker.adopt(rows),
  });
  return worker;
}
