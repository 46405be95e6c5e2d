import type { Database, Db, Tx } from "../db/client.js";
import type { BackoffOptions } from "../domain/backoff.js";
import type { Clock } from "../domain/clock.js";
import type { QueueDefinition } from "./definitions.js";
import type { QueueRow } from "./row.js";
import type { YieldTo } from "./yieldTo.js";

/** The contract of a queue `Worker`: what it is given, what it calls, what it reports. */

/** What a worker reports while it runs; metrics and logs subscribe to these. */
export interface WorkerEvents {
  "job:claimed": [rows: QueueRow[]];
  "job:completed": [rows: QueueRow[]];
  "job:failed": [row: QueueRow, error: string, retryAt: string];
  "job:dead": [row: QueueRow, error: string];
  /** Completion refused: the lease was no longer this worker's (it expired and the row was re-claimed). */
  "job:lost": [row: QueueRow];
  "worker:reaped": [count: number];
  "worker:error": [error: unknown];
  "worker:stopped": [];
}

/**
 * At-least-once: `handle` runs outside any transaction (an HTTP call, a publish) and the row is completed
 * after it returns, in batches. Transactional: `handle` gets a transaction and a chunk of rows, and their
 * completion commits in that same transaction — effects and acknowledgement together or not at all.
 */
export type WorkerHandler =
  | { mode: "at-least-once"; handle: (row: QueueRow) => Promise<void> }
  | {
      mode: "transactional";
      /** Most rows per transaction; with `chunkWeight`, most total weight. @defaultValue batchSize */
      chunkSize?: number;
      /**
       * A row's weight (e.g. the events a webhook delivery holds): a chunk takes rows while their total stays
       * within `chunkSize`, and a row heavier than that alone.
       */
      chunkWeight?: (row: QueueRow) => number;
      handle: (tx: Tx, rows: QueueRow[]) => Promise<void>;
    };

export interface WorkerOptions {
  queue: QueueDefinition;
  /** Cross-tenant database handle (the system connection). */
  db: Db;
  /** LISTEN support; without it the worker only polls. */
  listen?: Database["listen"];
  handler: WorkerHandler;
  /** Rows claimed per round trip (also the local queue size). @defaultValue 100 */
  batchSize?: number;
  /** Claims in flight at once while the queue is backed up (each holds up to `batchSize` rows). @defaultValue 2 */
  parallelClaims?: number;
  /** Handlers (or transactional chunks) running at once. @defaultValue 16 */
  concurrency?: number;
  /** @defaultValue 30000 */
  leaseMs?: number;
  /** Fallback poll when no NOTIFY arrives. @defaultValue 5000 */
  pollIntervalMs?: number;
  /**
   * While rows arrive one at a time (each claim brings a single row), completions are written together at
   * most this long after the first of them finished, which keeps their statements out of the way of the next
   * deliveries. Otherwise flushes batch by themselves (completions pile up while one is written) and go at
   * once, as do failures and completions of ordered rows (which free their key's next row). A crash in that
   * window means those rows are delivered again, which at-least-once delivery allows. @defaultValue 250
   */
  ackDelayMs?: number;
  /** How often expired leases are returned to the queue. @defaultValue leaseMs / 2 */
  reapIntervalMs?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  workerId?: string;
  /**
   * Requests of this process to give way to (`YieldTo`, as the API's `Foreground` counts them): in a spell
   * of requests in flight, no handler starts for its first `maxYieldMs`, one at a time for three times as
   * long, then as usual. Keep
   * `maxYieldMs` well below `leaseMs` (at most an eighth): claimed rows wait meanwhile.
   */
  yieldTo?: YieldTo;
  /** @defaultValue 250 */
  maxYieldMs?: number;
  /** Values of the queue's claim filter placeholders, read at each claim (see `QueueDefinition`). */
  claimValues?: () => Record<string, unknown>;
}
