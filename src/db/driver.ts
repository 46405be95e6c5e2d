import type { Sql } from "postgres";
import { DatabaseTimeoutError, withDeadline } from "./deadline.js";
import { connectionLost } from "./errors.js";

export interface DriverOptions {
  /**
   * Every query and transaction is answered within this, or rejected with a `DatabaseTimeoutError`.
   * @defaultValue none
   */
  deadlineMs?: number | undefined;
}

/**
 * The postgres.js client Drizzle is given, with what Drizzle calls (`unsafe` for a query, `begin` for a
 * transaction) made safe for outages:
 *
 * - **A transaction whose connection is lost sends nothing more on it.** postgres.js would send its
 *   ROLLBACK, or the work's next statement, on the closed connection and crash the process from a timer, out
 *   of any caller's reach (porsager/postgres#1208, still in 3.4.10). The server rolls back a transaction
 *   whose session ended anyway; the caller gets the connection's error.
 * - **With `deadlineMs`, everything is answered in time.** The server's time-outs cannot do this alone: a
 *   query may wait in postgres.js for a connection during its reconnect back-off (seconds, growing to 20 s),
 *   or sit on a connection whose server vanished without a reset, where no time-out of the server helps.
 *   What the deadline does to the late work: a query still queued in the driver leaves its queue (never
 *   sent), one already sent is cancelled if the server can still be reached; a transaction that has not
 *   started is rolled back before its first statement, one under way at its next statement. A commit already
 *   sent may still succeed after the caller was told "unavailable": callers answer 2xx only after a commit,
 *   so an acknowledged write is never lost, and a client that retries a write answered 503 may find it done.
 */
export function guardedClient(client: Sql, options: DriverOptions = {}): Sql {
  const { deadlineMs } = options;
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === "unsafe" && deadlineMs !== undefined) {
        return (...args: Parameters<Sql["unsafe"]>) => boundedQuery(target.unsafe(...args), deadlineMs);
      }
      if (property === "begin") return (...args: unknown[]) => guardedTransaction(target, args, deadlineMs);
      return Reflect.get(target, property, receiver);
    },
  });
}

type Pending = ReturnType<Sql["unsafe"]>;

/** Drizzle awaits a query, or its `.values()`; both run under the deadline, and a late query is cancelled. */
function boundedQuery(pending: Pending, deadlineMs: number) {
  const run = <T>(work: PromiseLike<T>) =>
    withDeadline(deadlineMs, work, () => {
      // A queued query is simply dropped; a sent one needs the server (which may be gone): ignore failures.
      Promise.resolve(pending.cancel() as unknown).catch(() => {});
    });
  return {
    values: () => run(pending.values()),
    // biome-ignore lint/suspicious/noThenProperty: Drizzle awaits what `unsafe` returns
    then: <A, B>(ok?: (rows: unknown) => A | PromiseLike<A>, fail?: (error: unknown) => B | PromiseLike<B>) =>
      run(pending).then(ok, fail),
  };
}

/**
 * Never settles: postgres.js then neither commits nor rolls back (the connection is gone). A new one each
 * time: nothing holds it, so the abandoned scope is collected with it.
 */
const abandoned = () => new Promise<never>(() => {});

function guardedTransaction(target: Sql, args: unknown[], deadlineMs: number | undefined) {
  /** The transaction's connection closed (postgres.js rejects `begin` then, whatever the work is doing). */
  let lost: unknown;
  let expired = false;
  const work = args.at(-1) as (sql: Sql) => unknown;
  const refuse = () => {
    if (lost !== undefined) throw lost;
    if (expired) throw new DatabaseTimeoutError(deadlineMs!);
  };
  const scoped = async (sql: Sql) => {
    try {
      refuse();
      return await work(
        new Proxy(sql, {
          get(inner, property, receiver) {
            const value = Reflect.get(inner, property, receiver);
            if (property !== "unsafe") return value;
            return (...unsafeArgs: Parameters<Sql["unsafe"]>) => {
              refuse();
              return inner.unsafe(...unsafeArgs);
            };
          },
        }),
      );
    } catch (error) {
      // Failed because the connection is gone: no ROLLBACK on it (`begin` rejects with the connection's error).
      if (lost !== undefined || connectionLost(error)) return abandoned();
      throw error;
    }
  };
  const begin = target.begin as (...beginArgs: unknown[]) => Promise<unknown>;
  const transaction = begin(...args.slice(0, -1), scoped);
  transaction.catch((error: unknown) => {
    if (connectionLost(error)) lost = error;
  });
  if (deadlineMs === undefined) return transaction;
  return withDeadline(deadlineMs, transaction, () => {
    expired = true;
  });
}
