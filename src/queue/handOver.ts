import type { Db, Executor } from "../db/client.js";
import type { QueueRow } from "./row.js";

/**
 * A dispatcher of this process, as the event writer sees it: the writer claims the deliveries of its
 * handlers in the statement that writes the events (when that statement is its own transaction) and hands
 * them over once committed, so they start without a NOTIFY and a claim's round trip. If the process dies in
 * between, their lease runs out and any dispatcher takes them, as with rows of an ordinary claim.
 */
export interface LocalDispatcher {
  workerId: string;
  leaseMs: number;
  /** The dispatcher's clock, which its leases are reckoned by. */
  now(): Date;
  handlerNames(): string[];
  /** Room for about `count` more rows now (a write of `count` events claims about as many). */
  canAdopt(count: number): boolean;
  adopt(rows: QueueRow[]): void;
}

/**
 * The hand-over between the event writers and the dispatchers of one process on one database: made by the
 * caller that wires them (the runtime, or a library user) and given to both — to `createDispatcher`
 * (`handOver`), which registers its dispatcher, and to `writeEvents` (`{ handOver }`), which asks it for one.
 * Nothing is shared through module state: writers and dispatchers not given the same object never meet.
 */
export class LocalHandOver {
  readonly #dispatchers = new Set<LocalDispatcher>();

  /** `db`: the very `Db` object the writers write through; a transaction of it is not it. */
  constructor(readonly db: Db) {}

  /** Make a dispatcher known to the writers. It stays known: it takes nothing while not running (`canAdopt`). */
  register(dispatcher: LocalDispatcher): void {
    this.#dispatchers.add(dispatcher);
  }

  /**
   * The dispatcher to take the deliveries of `events` events written through `executor` now: only when the
   * write goes through `db` itself (a transaction's writes are claimed after it commits, the ordinary way),
   * with room for them and handlers.
   */
  dispatcherFor(executor: Executor, events: number): LocalDispatcher | undefined {
    if (executor !== this.db) return undefined;
    for (const dispatcher of this.#dispatchers) {
      if (dispatcher.canAdopt(events) && dispatcher.handlerNames().length > 0) return dispatcher;
    }
    return undefined;
  }
}
