import type { YieldTo } from "../queue/yieldTo.js";

/**
 * Requests a process is serving that its background workers give way to (the webhook door). In a busy spell
 * (requests in flight without a break), a worker given one as `yieldTo` starts no handler for the first
 * `maxYieldMs`, then one at a time for three times as long, then runs as usual: accepting a burst of
 * webhooks, which the provider times out and retries, comes before processing the ones already kept, and a
 * door that is never idle slows processing for a moment, not for good.
 */
export class Foreground implements YieldTo {
  private active = 0;
  /** When the current busy spell began (monotonic ms); undefined while idle. */
  private since: number | undefined;
  private readonly waiting = new Set<() => void>();

  /** A request starts; call the returned function when it is over (answered or aborted). Extra calls do nothing. */
  enter(): () => void {
    this.active += 1;
    this.since ??= performance.now();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.active -= 1;
      if (this.active === 0) {
        this.since = undefined;
        const listeners = [...this.waiting];
        this.waiting.clear();
        for (const listener of listeners) listener();
      }
    };
  }

  get busy(): boolean {
    return this.active > 0;
  }

  /** How long the current busy spell has lasted (0 while idle). */
  busyFor(now = performance.now()): number {
    return this.since === undefined ? 0 : now - this.since;
  }

  /** Call `listener` once, the next time no request is in flight; returns a function that cancels it. */
  whenIdle(listener: () => void): () => void {
    this.waiting.add(listener);
    return () => {
      this.waiting.delete(listener);
    };
  }
}
