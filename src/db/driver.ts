import type { Sql } from "postgres";
import { DatabaseTimeoutError, withDeadline } from "./deadline.js";
import { connectionLost } from "./errors.js";

export interface DriverOptions {
  /**
   * Every query and transaction is answered within this, or rejected with a `DatabaseTimeoutError`.
   * @defaultValue none
   */
  deadlineMs?: number | undefined;
  /**
   * With `deadlineMs`: how many queries and transactions given up on may still be held by the driver (waiting
   * for a connection, or for an answer) before new ones fail at once instead of queueing behind them.
   * @defaultValue 20
   */
  maxOverdue?: number;
}

/**
 * The postgres.js client Drizzle is given, with what Drizzle calls (`unsafe` for a query, `begin` for a
 * transaction) made safe for outages.
 *
 * - **A transaction whose connection is lost sends nothing more on it.** postgres.js would send its
 *   ROLLBACK, or the work's next statement, on the closed connection and crash the process from a timer, out
 *   of any caller's reach (porsager/postgres#1208, still in 3.4.10). The server rolls back a transaction
 *   whose session ended anyway; the caller gets the connection's error.
 * - **Array types are fetched by the first connection only.** postgres.js fetches them on every new
 *   connection, in a promise it never handles: a connection lost during that fetch (a reconnection into an
 *   outage) ended the process with an unhandled rejection. They are the same for every connection, and a
 *   query is answered only once its connection has them: after the first answer, new connections skip it.
 *   (The first connection's fetch keeps the risk; it happens at start-up, where the warm-up runs.)
 * - **With `deadlineMs`, everything is answered in time.** The server's time-outs cannot do this alone: a
 *   query may wait in postgres.js for a connection during its reconnect back-off, or sit on a connection
 *   whose server vanished without a reset, where no time-out of the server helps.
 *
 * What the deadline does to the late work: nothing is cancelled in the driver (postgres.js's `cancel()` of a
 * query waiting for a new connection leaves that connection unused for good once it is made, and of a sent
 * one reports failures on a promise nobody can handle). A sent statement runs into the server's
 * `statement_timeout`. A transaction not yet started is rolled back before its first statement, one under way
 * at its next statement. A single statement still waiting may run once the database is back, and a commit
 * already sent may succeed: callers answer 2xx only after a commit, so an acknowledged write is never lost,
 * and a client that retries a write answered 503 may find it done (event keys and provider event ids
 * dedupe). While `maxOverdue` such late ones are held, new work fails at once: an outage does not pile up
 * requests (and their bodies) in memory, or a burst of stale work for the database's return.
 */
export function guardedClient(client: Sql, options: DriverOptions = {}): Sql {
  const { deadlineMs, maxOverdue = 20 } = options;
  let overdue = 0;
  const typesKnown = () => {
    client.options.fetch_types = false;
  };
  /** Run `work` under the deadline; it counts as overdue from the deadline until it settles. */
  const bounded = <T>(work: () => PromiseLike<T>, onTimeout?: () => void): Promise<T> => {
    if (deadlineMs !== undefined && overdue >= maxOverdue) {
      return Promise.reject(new DatabaseTimeoutError(deadlineMs));
    }
    const running = work();
    const answered =
      deadlineMs === undefined
        ? Promise.resolve(running)
        : withDeadline(deadlineMs, running, () => {
            overdue += 1;
            // Counted until it settles, or for ten deadlines at most: one the driver lost for good (it
            // happens, see socket.ts) must not hold back every later request.
            let counted = true;
            const forget = () => {
              if (counted) overdue -= 1;
              counted = false;
              clearTimeout(horizon);
            };
            const horizon = setTimeout(forget, deadlineMs * 10);
            horizon.unref();
            running.then(forget, forget);
            onTimeout?.();
          });
    answered.then(typesKnown, () => {});
    return answered;
  };
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === "unsafe") {
        // Drizzle awaits what `unsafe` returns, or its `.values()` (`queryBytes` its `.raw()`); the query starts
        // when awaited.
        return (...args: Parameters<Sql["unsafe"]>) => ({
          values: () => bounded(() => target.unsafe(...args).values()),
          raw: () => bounded(() => target.unsafe(...args).raw()),
          // biome-ignore lint/suspicious/noThenProperty: a thenable like the query it stands for
          then: <A, B>(
            ok?: (rows: unknown) => A | PromiseLike<A>,
            fail?: (error: unknown) => B | PromiseLike<B>,
          ) => bounded(() => target.unsafe(...args)).then(ok, fail),
        });
      }
      if (property === "begin") {
        return (...args: unknown[]) => {
          const transaction = guardedTransaction(target, args, deadlineMs);
          return bounded(transaction.run, transaction.expire);
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
}

/**
 * Never settles: postgres.js then neither commits nor rolls back (the connection is gone). A new one each
 * time: nothing holds it, so the abandoned scope is collected with it.
 */
const abandoned = () => new Promise<never>(() => {});

/** A transaction to `run`, which refuses its statements once lost or past its deadline (`expire`). */
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
  return {
    run: () => {
      const begin = target.begin as (...beginArgs: unknown[]) => Promise<unknown>;
      const transaction = begin(...args.slice(0, -1), scoped);
      transaction.catch((error: unknown) => {
        if (connectionLost(error)) lost = error;
      });
      return transaction;
    },
    expire: () => {
      expired = true;
    },
  };
}
