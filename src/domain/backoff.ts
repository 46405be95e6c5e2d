/** Retry delays: exponential from `baseMs`, doubling per attempt, capped at `maxMs`, with full jitter. */

export interface BackoffOptions {
  /** @defaultValue 1000 */
  baseMs: number;
  /** @defaultValue 60000 */
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 1000, maxMs: 60_000 };

/** The ceiling of the delay after `attempt` failed attempts (1-based): base · 2^(attempt-1), capped. */
export function backoffCeilingMs(attempt: number, options: BackoffOptions = defaultBackoff): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(options.maxMs, options.baseMs * 2 ** exponent);
}

/**
 * The delay before the next attempt: between half the ceiling and the ceiling ("equal jitter"), so retries
 * of a burst spread out while the schedule still grows. `random` is injectable for tests.
 */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = defaultBackoff,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeilingMs(attempt, options);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
