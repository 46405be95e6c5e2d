import type { Database, Db } from "../db/client.js";
import { parseDbTimestamp } from "../db/timestamps.js";
import type { BackoffOptions } from "../domain/backoff.js";
import { inboundEventsQueue } from "../queue/definitions.js";
import { Worker } from "../queue/worker.js";
import type { WorkerOptions } from "../queue/workerOptions.js";
import type { InboundMetrics } from "./metrics.js";
import { type ThreadedMessage, threadInbound } from "./process.js";

export interface InboundWorkerOptions {
  db: Db;
  listen?: Database["listen"];
  metrics?: InboundMetrics;
  /** @defaultValue 50 */
  batchSize?: number;
  /** Transactions threading events at once. @defaultValue 4 */
  concurrency?: number;
  /** Events threaded in one transaction at most. @defaultValue 50 */
  chunkSize?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  backoff?: BackoffOptions;
  workerId?: string;
  clock?: WorkerOptions["clock"];
}

/**
 * The inbound worker: claims queued inbound events and threads them, a chunk per transaction whose commit
 * also completes them (`threadInbound`). A failure rolls that event back and retries it with back-off; after its
 * last attempt it is a dead letter; a worker that dies mid-way leaves a lease that expires and is reaped —
 * all the claim engine's.
 */
export function createInboundWorker(options: InboundWorkerOptions): Worker {
  const { metrics } = options;
  const threaded = new WeakMap<object, ThreadedMessage[]>();
  const worker = new Worker({
    queue: inboundEventsQueue,
    db: options.db,
    listen: options.listen,
    batchSize: options.batchSize ?? 50,
    concurrency: options.concurrency ?? 4,
    leaseMs: options.leaseMs,
    pollIntervalMs: options.pollIntervalMs,
    backoff: options.backoff,
    workerId: options.workerId,
    clock: options.clock,
    handler: {
      mode: "transactional",
      // Up to a claim's worth per transaction, one commit for them all. A chunk that fails is run again one
      // event per transaction (the claim engine's), so a failing event holds back no other.
      chunkSize: options.chunkSize ?? 50,
      handle: async (tx, rows) => {
        const done = await threadInbound(tx, rows);
        if (metrics) threaded.set(rows, done);
      },
    },
  });
  if (metrics) {
    worker.on("job:completed", (rows) => {
      for (const m of threaded.get(rows) ?? [])
        metrics.processed.inc({ channel: m.channel, thread_reason: m.threadReason });
      const now = Date.now();
      for (const row of rows)
        metrics.lag.observe(Math.max(0, now - parseDbTimestamp(row.created_at).getTime()) / 1000);
    });
    worker.on("job:failed", () => metrics.errors.inc());
    worker.on("job:dead", () => {
      metrics.errors.inc();
      metrics.deadLetters.inc();
    });
  }
  return worker;
}
