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
  /** Events threaded at once, each in its own transaction. @defaultValue 4 */
  concurrency?: number;
  leaseMs?: number;
  pollIntervalMs?: number;
  backoff?: BackoffOptions;
  workerId?: string;
  clock?: WorkerOptions["clock"];
}

/**
 * The inbound worker: claims queued inbound events and threads each in one transaction whose commit also
 * completes it (`threadInbound`). A failure rolls that event back and retries it with back-off; after its
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
      // One event per transaction: a failing one holds back no other.
      chunkSize: 1,
      handle: async (tx, rows) => {
        const done: ThreadedMessage[] = [];
        for (const row of rows) {
          const message = await threadInbound(tx, row);
          if (message) done.push(message);
        }
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
