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
import * as schema from "./schema/index.js";

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
  /** Seconds to wait for a connection before failing (so /readyz answers instead of hanging). @defaultValue 5 */
  connectTimeoutSeconds?: number;
}

export async function openDatabase(options: OpenOptions = {}): Promise<Database> {
  return options.url ? openPostgres(options.url, options) : openPglite(options.dataDir);
}

function openPostgres(url: string, options: OpenOptions): Database {
  const poolSize = options.poolSize ?? 10;
  const client = postgres(url, {
    max: poolSize,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    onnotice: () => {},
    // JIT compiles plans for queries it thinks are large; for short queue statements it only adds latency.
    connection: { application_name: "herald", jit: "off" },
  });
  const db = drizzlePostgres(client, { schema }) as unknown as Db;
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
}

/** Rows of a raw statement: postgres.js returns an array, PGlite an object with `rows`. */
export async function query<T = Record<string, unknown>>(
  executor: Executor,
  statement: SQL,
  options: QueryOptions = {},
): Promise<T[]> {
  // Drizzle's execute() never prepares.
  if (options.prepare) return runCompiled<T>(executor, dialect.sqlToQuery(statement), {}, true);
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

const rowsOf = <T>(result: unknown): T[] =>
  (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

/** True when the database answers a trivial query. */
export async function ping(executor: Executor): Promise<void> {
  await executor.execute(sql`select 1`);
}
