import { databaseTimeoutCode } from "./errors.js";

/**
 * The database did not answer within its bound (HERALD_DB_TIMEOUT_MS): the server is down, unreachable, or
 * the driver is between reconnection attempts. Classified "unavailable" (503). Nothing is known of the
 * work's outcome: it may still finish.
 */
export class DatabaseTimeoutError extends Error {
  override name = "DatabaseTimeoutError";
  readonly code = databaseTimeoutCode;
  constructor(readonly timeoutMs: number) {
    super(`The database did not answer within ${timeoutMs} ms`);
  }
}

/**
 * `work`'s outcome, or a `DatabaseTimeoutError` once `timeoutMs` have passed first; then `onTimeout` runs
 * (to cancel what can be cancelled). The work itself goes on: its late outcome is dropped.
 */
export function withDeadline<T>(timeoutMs: number, work: PromiseLike<T>, onTimeout?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout?.();
      reject(new DatabaseTimeoutError(timeoutMs));
    }, timeoutMs);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
