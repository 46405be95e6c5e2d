/**
 * What a worker gives way to (its `yieldTo` option): the requests its process is serving, as the API counts
 * them (`api/foreground.ts`). In a busy spell the worker starts no handler for a while, then one at a time,
 * then runs as usual (see `Worker`).
 */
export interface YieldTo {
  /** A request is in flight. */
  readonly busy: boolean;
  /** How long the current busy spell has lasted, in ms (0 while idle). */
  busyFor(): number;
  /** Call `listener` once, the next time nothing is in flight; returns a function that cancels it. */
  whenIdle(listener: () => void): () => void;
}
