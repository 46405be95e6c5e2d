/** The event bus, as the library exposes it. */

export { listDeadLetters, retryDeadLetters } from "./deadLetters.js";
export { createDispatcher, type DispatcherOptions, deliver } from "./dispatcher.js";
export { checkIntegrity } from "./integrity.js";
export { replayEvents } from "./replay.js";
export {
  DeniedDestinationError,
  type DestinationPolicy,
  deniedNetwork,
  denyAll,
  destinationPolicy,
} from "./sinks/destination.js";
export { type EventHandler, HandlerRegistry } from "./sinks/handlers.js";
export { NatsPublisher } from "./sinks/nats.js";
export { signWebhook } from "./sinks/webhook.js";
export { type BusStats, busStats, type SubscriptionHealth, subscriptionHealth } from "./stats.js";
export { subscribe } from "./subscribe.js";
export * from "./subscriptions.js";
