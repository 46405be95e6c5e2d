import { Counter, Histogram, type Registry } from "prom-client";
import { perRegistry } from "../queue/metrics.js";

/** Ingestion series (one set per registry): what arrived, was stored, was a repeat, found its message. */
export const createIngestMetrics = perRegistry(create);

function create(registry: Registry) {
  const registers = [registry];
  return {
    received: new Counter({
      name: "herald_webhook_deliveries_received_total",
      help: "Provider deliveries archived",
      labelNames: ["provider"],
      registers,
    }),
    rejected: new Counter({
      name: "herald_webhook_deliveries_rejected_total",
      help: "Provider deliveries refused or archived as rejected, by reason",
      labelNames: ["provider", "reason"],
      registers,
    }),
    inserted: new Counter({
      name: "herald_message_events_inserted_total",
      help: "Provider events stored",
      labelNames: ["provider"],
      registers,
    }),
    duplicates: new Counter({
      name: "herald_message_events_duplicates_total",
      help: "Provider events skipped as repeats",
      labelNames: ["provider"],
      registers,
    }),
    linked: new Counter({
      name: "herald_message_events_linked_total",
      help: "Stored events linked to their message",
      labelNames: ["provider"],
      registers,
    }),
    unlinked: new Counter({
      name: "herald_message_events_unlinked_total",
      help: "Stored events whose message is not registered (yet)",
      labelNames: ["provider"],
      registers,
    }),
    storageErrors: new Counter({
      name: "herald_ingest_storage_errors_total",
      help: "Processing attempts that failed",
      registers,
    }),
    lag: new Histogram({
      name: "herald_ingest_lag_seconds",
      help: "Delivery received → processed",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
  };
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
