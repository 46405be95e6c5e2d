import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { type Database, type Db, query } from "../db/client.js";
import { describeError } from "../db/errors.js";
import { parseDbTimestamp } from "../db/timestamps.js";
import { type BackoffOptions, backoffDelayMs, defaultBackoff } from "../domain/backoff.js";
import { type Clock, systemClock } from "../domain/clock.js";
import { AckBatcher, type PendingFailure } from "./ackBatcher.js";
import { claimBatch } from "./claim.js";
import { ClaimLoop } from "./claimLoop.js";
import { completeBatch } from "./complete.js";
import { ConcurrencyPolicy } from "./concurrency.js";
import type { QueueDefinition } from "./definitions.js";
import { type Failure, failBatch } from "./fail.js";
import { reapExpired } from "./reap.js";
import { releaseBatch } from "./release.js";
import type { Lease, QueueRow } from "./row.js";
import type { WorkerEvents, WorkerHandler, WorkerOptions } from "./workerOptions.js";

class LeaseLostError extends Error {
  override name = "LeaseLostError";
}

export class Worker extends EventEmitter<WorkerEvents> {
  readonly id: string;
  private readonly queue: QueueDefinition;
  private readonly db: Db;
  private readonly handler: WorkerHandler;
  private readonly batchSize: number;
  private readonly concurrency: number;
  readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly reapIntervalMs: number;
  private readonly backoff: BackoffOptions;
  private readonly clock: Clock;
  private readonly listen: Database["listen"] | undefined;

  private running = false;
  /** When to claim and how much. */
  private readonly loop: ClaimLoop;
  private readonly local: QueueRow[] = [];
  private inFlight = 0;
  /** Rows held by running handlers (counts against the batch size, so the lease count stays bounded). */
  private inFlightRows = 0;
  private readonly tasks = new Set<Promise<void>>();
  /** Acknowledgements of at-least-once handlers; its `trickle` says the last claim brought a single row. */
  private readonly acks: AckBatcher;
  private timers: NodeJS.Timeout[] = [];
  /** How many handlers may run now (the foreground give-way). */
  private readonly policy: ConcurrencyPolicy;
  private readonly claimValues: (() => Record<string, unknown>) | undefined;
  private unlisten: (() => Promise<void>) | undefined;

  constructor(options: WorkerOptions) {
    super();
    this.queue = options.queue;
    this.db = options.db;
    this.handler = options.handler;
    this.listen = options.listen;
    this.batchSize = options.batchSize ?? 100;
    this.concurrency = options.concurrency ?? 16;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 5000;
    this.reapIntervalMs = options.reapIntervalMs ?? Math.max(1000, Math.floor(this.leaseMs / 2));
    this.backoff = options.backoff ?? defaultBackoff;
    this.clock = options.clock ?? systemClock;
    this.id = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
    this.claimValues = options.claimValues;
    this.acks = new AckBatcher({
      ackDelayMs: options.ackDelayMs ?? 250,
      running: () => this.running,
      write: (completing, failing) => this.writeAcks(completing, failing),
    });
    this.policy = new ConcurrencyPolicy({
      concurrency: this.concurrency,
      yieldTo: options.yieldTo,
      maxYieldMs: options.maxYieldMs ?? 250,
      onResume: () => {
        this.dispatch();
        if (this.loop.claimAgain) this.wake();
      },
    });
    const parallelClaims = options.parallelClaims ?? 2;
    this.loop = new ClaimLoop({
      batchSize: this.batchSize,
      parallelClaims,
      running: () => this.running,
      room: () => this.batchSize * parallelClaims - this.local.length - this.inFlightRows,
      holdClaims: () => this.local.length > 0 && this.policy.heldBack(),
      claim: (limit) =>
        claimBatch(this.db, this.queue, {
          workerId: this.id,
          limit,
          leaseMs: this.leaseMs,
          now: this.clock.now(),
          filter: this.claimValues?.(),
        }),
      onRows: (rows) => {
        this.acks.trickle = rows.length === 1;
        if (rows.length === 0) return;
        this.emit("job:claimed", rows);
        if (!this.running) return this.release(rows);
        this.local.push(...rows);
        this.dispatch();
      },
      onError: (error) => this.emit("worker:error", error),
    });
  }

  /**
   * Listen, start the poll and reap timers, and claim what is already waiting. Resolves once that first claim
   * has returned (its rows handed to their handlers), so whatever the caller writes next is not raced by it.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.listen) this.unlisten = await this.listen(this.queue.channel, () => this.wake());
    this.timers.push(setInterval(() => this.wake(), this.pollIntervalMs));
    this.timers.push(setInterval(() => void this.reap(), this.reapIntervalMs));
    for (const timer of this.timers) timer.unref();
    this.wake();
    await this.loop.settled();
  }

  /** Claim now (a NOTIFY arrived, the poll fired, or capacity freed up), if there is room (see `ClaimLoop`). */
  wake(): void {
    this.loop.wake();
  }

  private dispatch(): void {
    if (!this.running || this.local.length === 0) return;
    const limit = this.policy.limit();
    while (this.inFlight < limit && this.local.length > 0) {
      const chunk = this.local.splice(0, this.chunkLength());
      this.inFlight += 1;
      this.inFlightRows += chunk.length;
      const task = this.runChunk(chunk).finally(() => {
        this.inFlight -= 1;
        this.inFlightRows -= chunk.length;
        this.tasks.delete(task);
        this.dispatch();
        // Refill early while the queue looked deep (an idle queue is woken by NOTIFY or the poll), and
        // honour a wake-up that found no room earlier.
        if (this.loop.claimAgain || (this.loop.backlog && this.local.length < this.batchSize / 2))
          this.wake();
      });
      this.tasks.add(task);
    }
  }

  /** How many of the buffered rows the next chunk takes (see `WorkerHandler`). */
  private chunkLength(): number {
    const handler = this.handler;
    if (handler.mode !== "transactional") return 1;
    const max = handler.chunkSize ?? this.batchSize;
    if (!handler.chunkWeight) return max;
    let taken = 0;
    let weight = 0;
    for (const row of this.local) {
      const next = weight + handler.chunkWeight(row);
      if (taken > 0 && next > max) break;
      weight = next;
      taken += 1;
    }
    return taken;
  }

  /**
   * A row that waited in the local buffer until its lease is (nearly) over must not start: the reaper may
   * already have handed it to someone else. It is left to the reaper, which returns it to the queue.
   */
  private leaseAlmostOver(row: QueueRow): boolean {
    const until = parseDbTimestamp(row.locked_until).getTime();
    const margin = Math.min(this.leaseMs / 4, 5000);
    return !Number.isNaN(until) && this.clock.now().getTime() >= until - margin;
  }

  private async runChunk(all: QueueRow[]): Promise<void> {
    const handler = this.handler;
    const rows = all.filter((row) => {
      if (!this.leaseAlmostOver(row)) return true;
      this.emit("job:lost", row);
      return false;
    });
    if (rows.length === 0) return;
    if (handler.mode === "at-least-once") {
      const row = rows[0]!;
      try {
        await handler.handle(row);
      } catch (error) {
        this.acks.fail({ row, failure: this.failureOf(row, error) });
        return;
      }
      this.acks.complete(row);
      return;
    }
    try {
      await this.db.transaction(async (tx) => {
        await handler.handle(tx, rows);
        const done = await completeBatch(tx, this.queue, this.id, rows, this.clock.now());
        if (done.length !== rows.length)
          throw new LeaseLostError(`lease lost on ${rows.length - done.length} rows`);
      });
      this.emit("job:completed", rows);
    } catch (error) {
      if (error instanceof LeaseLostError) {
        for (const row of rows) this.emit("job:lost", row);
        return;
      }
      if (rows.length > 1) {
        // Isolate the poison: retry each row alone so one bad row does not hold back the others.
        for (const row of rows) await this.runChunk([row]);
        return;
      }
      const row = rows[0]!;
      this.acks.fail({ row, failure: this.failureOf(row, error) });
    }
  }

  private failureOf(row: QueueRow, error: unknown): Failure {
    return {
      id: row.id,
      attempts: row.attempts,
      error: describeError(error),
      delayMs: backoffDelayMs(row.attempts, this.backoff),
    };
  }

  /** Write one batch of acknowledgements (see `AckBatcher`): one statement for completions, one for failures. */
  private async writeAcks(completing: QueueRow[], failing: PendingFailure[]): Promise<void> {
    // Finishing a row of an ordered key frees that key's next row, which no NOTIFY will announce.
    const freesKeys = [...completing, ...failing.map((f) => f.row)].some((r) => r.ordering_key != null);
    try {
      if (completing.length > 0) {
        const done = new Set(
          await completeBatch(this.db, this.queue, this.id, completing, this.clock.now(), {
            relaxedCommit: true,
          }),
        );
        const completed = completing.filter((r) => done.has(r.id));
        if (completed.length > 0) this.emit("job:completed", completed);
        for (const row of completing) if (!done.has(row.id)) this.emit("job:lost", row);
      }
      if (failing.length > 0) {
        const outcomes = new Map(
          (
            await failBatch(
              this.db,
              this.queue,
              this.id,
              failing.map((f) => f.failure),
              this.clock.now(),
              { relaxedCommit: true },
            )
          ).map((o) => [o.id, o]),
        );
        for (const { row, failure } of failing) {
          const outcome = outcomes.get(row.id);
          if (!outcome) this.emit("job:lost", row);
          else if (outcome.status === "dead") this.emit("job:dead", row, failure.error);
          else this.emit("job:failed", row, failure.error, outcome.nextAttemptAt);
        }
      }
    } catch (error) {
      // The rows keep their lease; once it expires the reaper returns them to the queue.
      this.emit("worker:error", error);
    }
    if (freesKeys) this.wake();
  }

  async reap(): Promise<number> {
    if (this.queue.onReap) {
      try {
        if ((await query(this.db, this.queue.onReap)).length > 0) this.wake();
      } catch (error) {
        this.emit("worker:error", error);
      }
    }
    try {
      const count = await reapExpired(this.db, this.queue, this.clock.now());
      if (count > 0) {
        this.emit("worker:reaped", count);
        this.wake();
      }
      return count;
    } catch (error) {
      this.emit("worker:error", error);
      return 0;
    }
  }

  private async release(rows: Lease[]): Promise<void> {
    try {
      await releaseBatch(this.db, this.queue, this.id, rows, this.clock.now());
    } catch (error) {
      this.emit("worker:error", error);
    }
  }

  /** Whether the worker would take about `count` rows claimed for it elsewhere now (see `adopt`). */
  canAdopt(count: number): boolean {
    return this.running && this.local.length + count <= this.batchSize;
  }

  /**
   * Take rows already claimed under this worker's id and lease, in a transaction that has committed (the
   * event writer does this for its own process's handlers): handled like rows of its own claims.
   */
  adopt(rows: QueueRow[]): void {
    if (rows.length === 0) return;
    // Never throws: the writer has committed, and a listener's error must not look like a failed write.
    try {
      this.emit("job:claimed", rows);
    } catch (error) {
      this.emitSafely("worker:error", error);
    }
    // What does not fit (writers racing for the same room) goes back to the queue, to be claimed as usual.
    const room = this.running ? Math.max(0, 2 * this.batchSize - this.local.length) : 0;
    const excess = rows.slice(room);
    if (excess.length > 0) {
      const released = this.release(excess).then(() => this.wake());
      this.tasks.add(released);
      void released.finally(() => this.tasks.delete(released));
    }
    if (room === 0) return;
    // Rows one at a time are a trickle, as from a claim: their acknowledgements are batched.
    this.acks.trickle = rows.length === 1;
    this.local.push(...rows.slice(0, room));
    this.dispatch();
  }

  private emitSafely(event: "worker:error", error: unknown): void {
    try {
      this.emit(event, error);
    } catch {
      // a listener of the error event failed too: nothing more to tell
    }
  }

  /** Stop claiming, give back unstarted rows, let running handlers finish, write their outcomes. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.policy.cancel();
    await this.unlisten?.().catch(() => undefined);
    await this.loop.settled();
    const unstarted = this.local.splice(0);
    await this.release(unstarted);
    await Promise.allSettled([...this.tasks]);
    await this.acks.drain();
    this.emit("worker:stopped");
  }
}
