import type { Failure } from "./fail.js";
import type { QueueRow } from "./row.js";

/** A failed row and how it failed, waiting to be written. */
export interface PendingFailure {
  row: QueueRow;
  failure: Failure;
}

export interface AckBatcherOptions {
  /** How long completions may wait while rows trickle in (see `WorkerOptions.ackDelayMs`). */
  ackDelayMs: number;
  /** Completions wait only while this holds (the worker runs); once it stops, they go at once. */
  running: () => boolean;
  /** Write one batch of outcomes; must not throw (the rows keep their lease when it fails). */
  write: (completing: QueueRow[], failing: PendingFailure[]) => Promise<void>;
}

/**
 * The acknowledgements of at-least-once handlers, written in batches: one write for everything finished
 * meanwhile, never two at once (outcomes that arrive during a write go in the next). While rows trickle in
 * (`trickle`: claims bring one row at a time), completions wait up to `ackDelayMs`, which keeps their
 * statements out of the way of the next deliveries; failures, completions of ordered rows (which free their
 * key's next row) and anything else go at once.
 */
export class AckBatcher {
  /** Rows arrive one at a time: completions may wait (set by the claim loop). */
  trickle = false;
  #completing: QueueRow[] = [];
  #failing: PendingFailure[] = [];
  #writing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #options: AckBatcherOptions;

  constructor(options: AckBatcherOptions) {
    this.#options = options;
  }

  complete(row: QueueRow): void {
    this.#completing.push(row);
    this.#schedule();
  }

  fail(pending: PendingFailure): void {
    this.#failing.push(pending);
    this.#schedule();
  }

  /** Outcomes not yet written (waiting or being written excluded). */
  get pending(): number {
    return this.#completing.length + this.#failing.length;
  }

  #schedule(now = false): void {
    const urgent =
      !this.trickle || this.#failing.length > 0 || this.#completing.some((r) => r.ordering_key != null);
    if (!now && !urgent && this.#options.running()) {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#schedule(true);
      }, this.#options.ackDelayMs);
      this.#timer.unref();
      return;
    }
    if (this.#writing) return;
    const completing = this.#completing;
    const failing = this.#failing;
    this.#completing = [];
    this.#failing = [];
    this.#writing = this.#options.write(completing, failing).finally(() => {
      this.#writing = undefined;
      if (this.pending > 0) this.#schedule();
    });
  }

  /** Write everything now, waiting included, and resolve once nothing is left (the worker stops). */
  async drain(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#writing || this.pending > 0) {
      if (!this.#writing) this.#schedule(true);
      await this.#writing;
    }
  }
}
