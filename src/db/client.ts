import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { ExtractTablesWithRelations } from "drizzle-orm";
import { type Query, type SQL, sql } from "drizzle-orm";
import {
  type PgDatabase,
  PgDialect,
  type PgQueryResultHKT,
  type PgSession,
  type PgTransaction,
} from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { guardedClient } from "./driver.js";
import * as schema from "./schema/index.js";
import { databaseSockets } from "./socket.js";

export type Schema = typeof schema;
/** A Drizzle database over postgres.js or PGlite; everything data-related takes this or a transaction. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Whatever runs SQL: the database or a transaction opened on it. */
export type Executor = Db | Tx;

export interface Database {
  readonly kind: "postgres" | "pglite";
  readonly db: Db;
  /** Subscribe to NOTIFY on `channel`; resolves to an unsubscribe function. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Open the pool's connections now, so a server's first requests do not each wait for a new connection
   * (a burst of webhooks right after a start or deploy). Nothing to do on PGlite.
   */
  warm(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** postgres:// URL; without one the embedded PGlite is used. */
  url?: string | undefined;
  /** PGlite directory; omit for an in-memory database. */
  dataDir?: string | undefined;
  /** @defaultValue 10 */
  poolSize?: number;
  /**
   * How long to wait for a new connection to be ready (postgres.js counts whole seconds: rounded up).
   * @defaultValue 5000
   */
  connectTimeoutMs?: number;
  /**
   * Server side: the longest a statement may run (`statement_timeout`). Also what tells a dead connection
   * from a slow one: one whose server sends nothing for this plus `connectTimeoutMs` while a statement waits
   * is closed (see `databaseSockets`). @defaultValue none
   */
  statementTimeoutMs?: number;
  /** Server side: the longest a statement waits for a lock (`lock_timeout`). @defaultValue none */
  lockTimeoutMs?: number;
  /**
   * Every query and transaction is answered within this, or fails with a `DatabaseTimeoutError` (see
   * `guardedClient`): for request paths, which must answer in time whatever the database does. @defaultValue none
   */
  deadlineMs?: number;
  /**
   * Longest pause between attempts to reconnect, once attempts keep failing (postgres.js's back-off grows
   * from 10 ms by threefold steps, with jitter, up to 20 s). Shorter: back sooner after an outage, at the
   * cost of more attempts during it (one per closed connection a query waits for). @defaultValue 20000
   */
  reconnectMaxDelayMs?: number;
}

export async function openDatabase(options: OpenOptions = {}): Promise<Database> {
  return options.url ? openPostgres(options.url, options) : openPglite(options.dataDir);
}

function openPostgres(url: string, options: OpenOptions): Database {
  const poolSize = options.poolSize ?? 10;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const { statementTimeoutMs, lockTimeoutMs, deadlineMs } = options;
  const client = postgres(url, {
    max: poolSize,
    connect_timeout: Math.ceil(connectTimeoutMs / 1000),
    onnotice: () => {},
    connection: {
      application_name: "herald",
      // JIT compiles plans for queries it thinks are large; for short queue statements it only adds latency.
      jit: "off",
      // The default since PostgreSQL 9.1, required: statements sent with `inline` rely on it.
      standard_conforming_strings: "on",
      ...(statementTimeoutMs === undefined ? {} : { statement_timeout: statementTimeoutMs }),
      ...(lockTimeoutMs === undefined ? {} : { lock_timeout: lockTimeoutMs }),
    },
    // Our own sockets: closed as soon as they fail, and when silent (see `databaseSockets`).
    socket: databaseSockets({
      silenceMs: statementTimeoutMs === undefined ? undefined : statementTimeoutMs + connectTimeoutMs,
    }),
    ...(options.reconnectMaxDelayMs === undefined
      ? {}
      : { backoff: reconnectDelay(options.reconnectMaxDelayMs) }),
  } as postgres.Options<Record<string, postgres.PostgresType>>);
  // Late work held by the driver (see `guardedClient`): a few per connection, then new work fails at once.
  const guarded = guardedClient(client, { deadlineMs, maxOverdue: poolSize * 2 });
  const db = drizzlePostgres(guarded, { schema }) as unknown as Db;
  return {
    kind: "postgres",
    db,
    async listen(channel, onNotify) {
      const subscription = await client.listen(channel, (payload) => onNotify(payload));
      return () => subscription.unlisten();
    },
    async warm() {
      // Queries issued together each take a connection of their own, opening it if needed.
      await Promise.all(Array.from({ length: poolSize }, () => client`select 1`));
    },
    close: () => client.end({ timeout: 5 }),
  };
}

/** postgres.js's own back-off (seconds after `retries` failed attempts), capped. */
const reconnectDelay = (maxMs: number) => (retries: number) =>
  (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, maxMs / 1000);

async function openPglite(dataDir: string | undefined): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const client = dataDir ? new PGlite(dataDir) : new PGlite();
  await client.waitReady;
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    kind: "pglite",
    db,
    async listen(channel, onNotify) {
      const unsubscribe = await client.listen(channel, onNotify);
      return unsubscribe;
    },
    warm: async () => {},
    close: () => client.close(),
  };
}

/** Turns Drizzle SQL into text and parameters, for statements run through `runCompiled`. */
export const dialect = new PgDialect();

export interface QueryOptions {
  /**
   * Run as a named prepared statement (postgres.js only): planned once per connection instead of per call.
   * For the hot statements of the queue and the event writer, whose text does not change between calls.
   */
  prepare?: boolean;
  /**
   * Send the values as literals in the text (Drizzle's `inlineParams`), with no parameters: one round trip,
   * where postgres.js first describes an unprepared statement that has parameters (two), and a plan made for
   * these values. For reads whose best plan depends on the values (a tenant's size, a time range), too
   * varied to prepare. Safe as Drizzle writes strings (quotes doubled) because every connection has
   * `standard_conforming_strings` on (set at connect: backslashes are then plain characters).
   */
  inline?: boolean;
}

/** Rows of a raw statement: postgres.js returns an array, PGlite an object with `rows`. */
export async function query<T = Record<string, unknown>>(
  executor: Executor,
  statement: SQL,
  options: QueryOptions = {},
): Promise<T[]> {
  // Drizzle's execute() never prepares.
  if (options.prepare) return runCompiled<T>(executor, dialect.sqlToQuery(statement), {}, true);
  if (options.inline) {
    const compiled = dialect.sqlToQuery(sql`${statement}`.inlineParams());
    // A NUL cannot travel in a statement's text (the protocol ends strings with it): sent as a parameter,
    // the server refuses it as it refuses any such value (22021, invalid input).
    if (compiled.sql.includes("\u0000")) return rowsOf<T>(await executor.execute(statement));
    return runCompiled<T>(executor, compiled, {}, false);
  }
  return rowsOf<T>(await executor.execute(statement));
}

/**
 * Run a statement already turned into text (`dialect.sqlToQuery`), its placeholders filled from `values`,
 * through the executor's Drizzle session: the pool's, or the transaction's connection. `prepared` makes it a
 * named prepared statement on postgres.js; PGlite runs it the same either way.
 */
export async function runCompiled<T = Record<string, unknown>>(
  executor: Executor,
  compiled: Query,
  values: Record<string, unknown>,
  prepared: boolean,
): Promise<T[]> {
  const session = (executor as unknown as { session: PgSession }).session;
  // postgres.js prepares when the statement has a name (it names it itself, by its text).
  const statement = session.prepareQuery(compiled, undefined, prepared ? "herald" : undefined, false);
  return rowsOf<T>(await statement.execute(values));
}

/**
 * A statement's rows as arrays of their values' bytes, as the server sent them (text format), not decoded:
 * for large texts passed on as they are (an export's batches: a string per batch would be decoded here and
 * encoded again, most of the exporting process's work). postgres.js hands them over as they arrived; on
 * PGlite, which decodes every value, they are encoded back. `prepare`: a named prepared statement (postgres.js).
 */
export async function queryBytes(
  executor: Executor,
  statement: SQL,
  options: { prepare?: boolean } = {},
): Promise<(Buffer | null)[][]> {
  const { client } = (executor as unknown as { session: { client: unknown } }).session;
  const raw = client as {
    unsafe?: (
      text: string,
      params: unknown[],
      options: { prepare: boolean },
    ) => { raw(): Promise<(Buffer | null)[][]> };
  };
  if (typeof raw.unsafe === "function") {
    const { sql: text, params } = dialect.sqlToQuery(statement);
    return [...(await raw.unsafe(text, params, { prepare: options.prepare ?? false }).raw())];
  }
  const rows = rowsOf<Record<string, unknown>>(await executor.execute(statement));
  return rows.map((row) =>
    Object.values(row).map((value) => (value === null ? null : Buffer.from(String(value), "utf8"))),
  );
}

const rowsOf = <T>(result: unknown): T[] =>
  (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

/** True when the database answers a trivial query. */
export async function ping(executor: Executor): Promise<void> {
  await executor.execute(sql`select 1`);
}
