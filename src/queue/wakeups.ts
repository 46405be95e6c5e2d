import type { Db } from "../db/client.js";
import type { QueueDefinition } from "./definitions.js";
import { notifyQueue } from "./enqueue.js";

/**
 * Wake a queue's workers after the writer's own transaction has committed, coalescing bursts: at most one
 * NOTIFY is in flight, and calls made meanwhile are folded into a single follow-up. A NOTIFY inside a busy
 * insert path would serialize those commits (PostgreSQL holds a global lock from a notifying transaction's
 * pre-commit to its end, WAL flush included); sent apart, concurrent inserts keep their group commit. A
 * wake-up lost to a crash or a failed NOTIFY is covered by the workers' poll.
 */
export class QueueWakeups {
  private sending = false;
  private again = false;

  /**
   * `gatherMs`: a follow-up waits this long after the NOTIFY before it, so that under a steady stream of
   * writes the workers are woken at most once per `gatherMs` and claim what gathered meanwhile in one go (a
   * transaction for many rows rather than one each). The first wake-up of a quiet spell goes at once.
   */
  constructor(
    private readonly db: Db,
    private readonly queue: QueueDefinition,
    private readonly onError: (error: unknown) => void = () => {},
    private readonly gatherMs = 0,
  ) {}

  /** Ask for a wake-up; returns at once. */
  wake(): void {
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    this.again = false;
    notifyQueue(this.db, this.queue)
      .catch(this.onError)
      .finally(() => {
        if (this.gatherMs > 0) setTimeout(() => this.settle(), this.gatherMs).unref();
        else this.settle();
      });
  }

  private settle() {
    this.sending = false;
    if (this.again) this.wake();
  }
}
