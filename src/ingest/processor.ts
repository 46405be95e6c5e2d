import type { Database, Db } from "../db/client.js";
import { parseDbTimestamp } from "../db/timestamps.js";
import type { BackoffOptions } from "../domain/backoff.js";
import { webhookDeliveriesQueue } from "../queue/definitions.js";
import { Worker } from "../queue/worker.js";
import type { WorkerOptions } from "../queue/workerOptions.js";
import type { IngestMetrics } from "./metrics.js";
import { type ProcessOutcome, processDeliveries } from "./process.js";

export interface ProcessorOptions {
  db: Db;
  listen?: Database["listen"];
  metrics?: IngestMetrics;
  /**
   * Events processed per transaction at most, in whole deliveries (one holding more goes alone): many small
   * deliveries (one event each, as most providers send them) share a transaction, a SendGrid batch of 500
   * has its own. @defaultValue 500
   */
  chunkEvents?: number;
  batchSize?: number;
  concurrency?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  backoff?: BackoffOptions;
  workerId?: string;
  /** The webhook door of this process, which processing gives way to (see `Foreground`). */
  yieldTo?: WorkerOptions["yieldTo"];
  /** @defaultValue 250 */
  maxYieldMs?: number;
}

/**
 * The webhook processor: claims archived deliveries and processes a chunk of them per transaction, whose
 * commit also acknowledges them — effects and acknowledgement together or not at all. A chunk that fails
 * is retried delivery by delivery, so one bad delivery cannot hold back the others.
 */
export function createProcessor(options: ProcessorOptions): Worker {
  const { metrics } = options;
  // What each chunk stored, counted only once its transaction has committed (a chunk that rolls back and is
  // retried must not count twice). Keyed by the chunk's array, which the worker hands to `job:completed`.
  const outcomes = new WeakMap<object, ProcessOutcome>();
  const worker = new Worker({
    queue: webhookDeliveriesQueue,
    db: options.db,
    listen: options.listen,
    // Deliveries are large (up to the body limit each): hold few of them at a time.
    batchSize: options.batchSize ?? 8,
    concurrency: options.concurrency ?? 4,
    leaseMs: options.leaseMs,
    pollIntervalMs: options.pollIntervalMs,
    backoff: options.backoff,
    workerId: options.workerId,
    yieldTo: options.yieldTo,
    maxYieldMs: options.maxYieldMs,
    handler: {
      mode: "transactional",
      chunkSize: options.chunkEvents ?? 500,
      chunkWeight: (row) => Math.max(1, Number(row.event_count) || 1),
      handle: async (tx, deliveries) => {
        const outcome = await processDeliveries(tx, deliveries);
        if (metrics) outcomes.set(deliveries, outcome);
      },
    },
  });
  if (metrics) {
    worker.on("job:completed", (rows) => {
      const outcome = outcomes.get(rows);
      if (outcome) {
        const provider = String(rows[0]?.provider ?? "unknown");
        const linked = outcome.stored.filter((e) => e.messageId).length;
        metrics.inserted.inc({ provider }, outcome.stored.length);
        metrics.duplicates.inc({ provider }, outcome.events - outcome.stored.length);
        metrics.linked.inc({ provider }, linked);
        metrics.unlinked.inc({ provider }, outcome.stored.length - linked);
      }
      const now = Date.now();
      for (const row of rows)
        metrics.lag.observe(Math.max(0, now - parseDbTimestamp(row.received_at).getTime()) / 1000);
    });
    worker.on("job:failed", () => metrics.storageErrors.inc());
    worker.on("job:dead", () => metrics.storageErrors.inc());
  }
  return worker;
}
