import type { Config } from "../config.js";
import { type Database, type OpenOptions, openDatabase } from "../db/client.js";
import { migrate } from "../db/migrate.js";

/** What a process's database handles serve, which decides their time-outs (see `databaseTimeouts`). */
export type DatabaseUse = "api" | "worker" | "command";

/**
 * Time-outs of a handle's connections (PostgreSQL only; the embedded database has no network to wait on).
 * Every handle connects within HERALD_DB_TIMEOUT_MS.
 * - api: a request is answered within that bound whatever the database does (API.md: 503 `unavailable`,
 *   never a hang), so a statement, a lock wait, and each query or transaction as a whole get no longer.
 * - worker: nobody waits on a worker's answer, and a batch of large deliveries may rightly take longer than
 *   a request. Its statements, and each query or transaction as a whole, get its lease (plus the bound, so
 *   the server's own time-out comes first): past it another worker may claim the same rows, so the work is
 *   wasted, and a wait that long is better given up and retried. So no worker waits forever, even on a
 *   connection that went silent or a driver that lost a query.
 * - command: migrations and the CLI, run by an operator: an index build may take minutes.
 */
function databaseTimeouts(config: Config, use: DatabaseUse): OpenOptions {
  const boundMs = config.databaseTimeoutMs;
  switch (use) {
    case "api":
      return {
        connectTimeoutMs: boundMs,
        statementTimeoutMs: boundMs,
        lockTimeoutMs: boundMs,
        deadlineMs: boundMs,
        // Requests keep coming during an outage: with postgres.js's back-off (up to 20 s between attempts)
        // they would go on being answered 503 that long after the database is back.
        reconnectMaxDelayMs: Math.max(1000, boundMs),
      };
    case "worker":
      return {
        connectTimeoutMs: boundMs,
        statementTimeoutMs: config.worker.leaseMs,
        deadlineMs: config.worker.leaseMs + boundMs,
      };
    case "command":
      return { connectTimeoutMs: boundMs };
  }
}

/** Open the configured database (and the system one, when a separate URL is set). */
export async function openConfiguredDatabases(
  config: Config,
  use: DatabaseUse = "command",
): Promise<{ app: Database; system: Database }> {
  const timeouts = databaseTimeouts(config, use);
  const app = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    ...timeouts,
  });
  const system = config.systemDatabaseUrl
    ? await openDatabase({ url: config.systemDatabaseUrl, poolSize: config.databasePoolSize, ...timeouts })
    : app;
  return { app, system };
}

/** The system database again, on connections of their own with a worker's time-outs (`herald serve`'s workers). */
export function openWorkerDatabase(config: Config): Promise<Database> {
  return openDatabase({
    url: config.systemDatabaseUrl ?? config.databaseUrl,
    poolSize: config.databasePoolSize,
    ...databaseTimeouts(config, "worker"),
  });
}

/** Apply pending migrations: on a server, over a connection of their own with no bound but connecting's. */
export async function migrateConfigured(config: Config, system: Database) {
  if (system.kind === "pglite") return migrate(system.db);
  const own = await openDatabase({
    url: config.systemDatabaseUrl ?? config.databaseUrl,
    poolSize: 1,
    ...databaseTimeouts(config, "command"),
  });
  try {
    return await migrate(own.db);
  } finally {
    await own.close();
  }
}
