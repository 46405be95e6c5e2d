import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { inject } from "vitest";
import { type Database, openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";
import { resetPartitionCache } from "../../src/db/partitions.js";
import { withDatabase } from "./globalSetup.js";

export type Backend = "postgres" | "pglite";

/** Whether a PostgreSQL server is available to this run. */
export const hasPostgres = () => inject("pgUrl") !== "";

/** Backends for suites that must behave alike on both. */
export const backends = (): Backend[] => (hasPostgres() ? ["pglite", "postgres"] : ["pglite"]);

export interface TestDatabase {
  database: Database;
  /** The URL of the server database (postgres backend only). */
  url: string | undefined;
  drop(): Promise<void>;
}

/** A fresh, migrated server database cloned from the run's template. */
export async function createServerDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = inject("pgUrl");
  const name = `herald_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name} template ${inject("pgTemplate")}`);
  await admin.end();
  return {
    url: withDatabase(base, name),
    async drop() {
      const cleanup = postgres(base, { max: 1, onnotice: () => {} });
      await cleanup.unsafe(`drop database if exists ${name} with (force)`);
      await cleanup.end();
    },
  };
}

/** A migrated database of the given backend, isolated from every other test file. */
export async function createTestDatabase(backend: Backend): Promise<TestDatabase> {
  // Suites of both backends share a process; the partition cache assumes one database per process.
  resetPartitionCache();
  if (backend === "pglite") {
    const database = await openDatabase();
    await migrate(database.db);
    return { database, url: undefined, drop: () => database.close() };
  }
  const server = await createServerDatabase();
  const database = await openDatabase({ url: server.url });
  return {
    database,
    url: server.url,
    async drop() {
      await database.close();
      await server.drop();
    },
  };
}
