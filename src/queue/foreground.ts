/**
 * Requests a process is serving that its background workers give way to (the webhook door). A worker given
 * one as `yieldTo` starts no handler while any request is in flight, for up to `maxYieldMs`, and after that
 * one at a time until the requests are over: accepting a webhook, which the provider times out and retries,
 * comes before processing the ones already kept, and a steady stream of requests slows processing down
 * without stopping it.
 */
export class Foreground {
  private active = 0;
  private readonly waiting = new Set<() => void>();

  /** A request starts; call the returned function when it is over (answered or aborted). Extra calls do nothing. */
  enter(): () => void {
    this.active += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.active -= 1;
      if (this.active === 0) {
        const listeners = [...this.waiting];
        this.waiting.clear();
        for (const listener of listeners) listener();
      }
    };
  }

  get busy(): boolean {
    return this.active > 0;
  }

  /** Call `listener` once, the next time no request is in flight; returns a function that cancels it. */
  whenIdle(listener: () => void): () => void {
    this.waiting.add(listener);
    return () => {
      this.waiting.delete(listener);
    };
  }
}
