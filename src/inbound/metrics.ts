import { Counter, Histogram, type Registry } from "prom-client";
import { perRegistry } from "../queue/metrics.js";

/**
 * Inbound series (one set per registry): messages received (and repeats), threaded (by why they joined
 * their conversation), failed attempts, dead letters, and the lag from receipt to threading. Queue depth
 * (queued, in flight, dead) comes from the queue gauges (`queue/metrics.ts`).
 */
export const createInboundMetrics = perRegistry(create);

function create(registry: Registry) {
  const registers = [registry];
  return {
    received: new Counter({
      name: "herald_inbound_received_total",
      help: "Inbound messages received, by channel and whether they were repeats",
      labelNames: ["channel", "duplicate"],
      registers,
    }),
    processed: new Counter({
      name: "herald_inbound_processed_total",
      help: "Inbound messages threaded into a conversation, by channel and thread reason",
      labelNames: ["channel", "thread_reason"],
      registers,
    }),
    errors: new Counter({
      name: "herald_inbound_errors_total",
      help: "Inbound processing attempts that failed",
      registers,
    }),
    deadLetters: new Counter({
      name: "herald_inbound_dead_letters_total",
      help: "Inbound messages that failed their last attempt",
      registers,
    }),
    lag: new Histogram({
      name: "herald_inbound_lag_seconds",
      help: "Inbound message received → threaded",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
  };
}

export type InboundMetrics = ReturnType<typeof createInboundMetrics>;
