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

  constructor(
    private readonly db: Db,
    private readonly queue: QueueDefinition,
    private readonly onError: (error: unknown) => void = () => {},
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
        this.sending = false;
        if (this.again) this.wake();
      });
  }
}
