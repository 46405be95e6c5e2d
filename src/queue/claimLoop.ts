import type { QueueRow } from "./row.js";

export interface ClaimLoopOptions {
  /** Rows per claim at most. */
  batchSize: number;
  /** Claims in flight at once while the queue is backed up. */
  parallelClaims: number;
  /** Whether claims may start (the worker runs). */
  running: () => boolean;
  /** Rows the worker could take now, claims in flight not counted (they are, here). */
  room: () => number;
  /** Whether not to claim at all now: rows already wait and the handlers are held back (the give-way). */
  holdClaims: () => boolean;
  /** Claim up to `limit` rows (one round trip). */
  claim: (limit: number) => Promise<QueueRow[]>;
  /** What a claim brought (perhaps nothing). */
  onRows: (rows: QueueRow[]) => void | Promise<void>;
  /** A claim failed. */
  onError: (error: unknown) => void;
}

/**
 * When to claim and how much. On an idle queue one claim runs and wake-ups during it are remembered; while
 * the queue is backed up (the last claim filled all the room it had), up to `parallelClaims` claims run at
 * once on separate connections (SKIP LOCKED keeps their rows apart), so claiming overlaps with delivery,
 * and only whole batches are claimed (small claims waste round trips).
 */
export class ClaimLoop {
  /** A wake-up found no room or a claim in the way: claim again once there is. */
  claimAgain = false;
  /** The last claim filled all the room it had: more rows are probably due. */
  backlog = false;
  readonly #claims = new Set<Promise<void>>();
  /** Rows asked for by claims in flight. */
  #reserved = 0;
  readonly #options: ClaimLoopOptions;

  constructor(options: ClaimLoopOptions) {
    this.#options = options;
  }

  /** Claim now (a NOTIFY arrived, the poll fired, or capacity freed up), if there is room. */
  wake(): void {
    const o = this.#options;
    if (!o.running()) return;
    // Held back for the foreground: rows already waiting are enough (a claim counts an attempt and starts a
    // lease); claiming resumes as they start.
    if (o.holdClaims()) {
      this.claimAgain = true;
      return;
    }
    if (this.#claims.size >= o.parallelClaims) {
      this.claimAgain = true;
      return;
    }
    do {
      const room = o.room() - this.#reserved;
      // While backed up, claim only whole batches; finishing rows wake the loop again once there is room. A
      // pending wake-up stays remembered until a claim starts.
      if (room <= 0 || (this.backlog && room < o.batchSize)) {
        this.claimAgain = true;
        return;
      }
      this.claimAgain = false;
      this.#start(Math.min(room, o.batchSize));
    } while (this.backlog && this.#claims.size < o.parallelClaims);
  }

  /** Resolves once the claims in flight now have returned (their rows handed on). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#claims]);
  }

  #start(limit: number): void {
    const o = this.#options;
    this.#reserved += limit;
    const claim: Promise<void> = o
      .claim(limit)
      .then(
        async (rows) => {
          this.backlog = rows.length === limit;
          await o.onRows(rows);
        },
        (error: unknown) => {
          this.backlog = false;
          o.onError(error);
        },
      )
      .finally(() => {
        this.#reserved -= limit;
        this.#claims.delete(claim);
        // A wake-up that arrived while claiming, or a full batch, means: claim again.
        if (this.claimAgain || this.backlog) this.wake();
      });
    this.#claims.add(claim);
  }
}
