import type { YieldTo } from "./yieldTo.js";

export interface ConcurrencyPolicyOptions {
  /** Handlers (or transactional chunks) running at once, as usual. */
  concurrency: number;
  /** Requests to give way to; without them the limit is always `concurrency`. */
  yieldTo?: YieldTo | undefined;
  /** The first step of a busy spell (no handler), in ms; the second (one handler) lasts three times as long. */
  maxYieldMs: number;
  /** Called once when a held-back limit may have risen: the foreground went idle or the next step began. */
  onResume: () => void;
}

/**
 * How many handlers a worker may run at once. In a busy spell of the foreground (`yieldTo`): none for its
 * first `maxYieldMs`, one for three times as long after that, then `concurrency` again, however long the
 * spell lasts. While held back, it calls `onResume` when the foreground goes idle or the next step of the
 * spell begins (one timer and one idle listener at a time).
 */
export class ConcurrencyPolicy {
  readonly concurrency: number;
  readonly #yieldTo: YieldTo | undefined;
  readonly #maxYieldMs: number;
  readonly #onResume: () => void;
  #resume: { timer: NodeJS.Timeout; cancel: () => void } | undefined;

  constructor(options: ConcurrencyPolicyOptions) {
    this.concurrency = options.concurrency;
    this.#yieldTo = options.yieldTo;
    this.#maxYieldMs = options.maxYieldMs;
    this.#onResume = options.onResume;
  }

  /** The limit now; arranges the resume call while it is below `concurrency`. */
  limit(): number {
    const spell = this.#yieldTo?.busy ? this.#yieldTo.busyFor() : undefined;
    if (spell === undefined || spell >= 4 * this.#maxYieldMs) return this.concurrency;
    if (!this.#resume) {
      const resume = () => {
        this.cancel();
        this.#onResume();
      };
      const nextStep = (spell < this.#maxYieldMs ? 1 : 4) * this.#maxYieldMs - spell;
      this.#resume = { timer: setTimeout(resume, nextStep), cancel: this.#yieldTo!.whenIdle(resume) };
    }
    return spell < this.#maxYieldMs ? 0 : 1;
  }

  /** Whether the limit is held below `concurrency` now. */
  heldBack(): boolean {
    return this.limit() < this.concurrency;
  }

  /** Forget a pending resume (the worker stops). */
  cancel(): void {
    if (!this.#resume) return;
    clearTimeout(this.#resume.timer);
    this.#resume.cancel();
    this.#resume = undefined;
  }
}
