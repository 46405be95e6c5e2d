import type { Db, Executor } from "../db/client.js";
import type { QueueRow } from "../queue/row.js";

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

const dispatchers = new WeakMap<Db, Set<LocalDispatcher>>();

/**
 * Make a dispatcher of `db` known to writers on that very `Db` object (not in a transaction). It stays known:
 * it takes nothing while it is not running (`canAdopt`).
 */
export function registerLocalDispatcher(db: Db, dispatcher: LocalDispatcher): void {
  let set = dispatchers.get(db);
  if (!set) {
    set = new Set();
    dispatchers.set(db, set);
  }
  set.add(dispatcher);
}

/**
 * The dispatcher to take the deliveries of `events` events written through `executor` now: only for a
 * database registered above (a transaction is not, so its writes are claimed after it commits, the ordinary
 * way), with room for them and handlers.
 */
export function localDispatcherFor(executor: Executor, events: number): LocalDispatcher | undefined {
  const set = dispatchers.get(executor as Db);
  if (!set) return undefined;
  for (const dispatcher of set) {
    if (dispatcher.canAdopt(events) && dispatcher.handlerNames().length > 0) return dispatcher;
  }
  return undefined;
}
