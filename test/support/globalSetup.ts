import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { openDatabase } from "../../src/db/client.js";
import { migrate } from "../../src/db/migrate.js";

/**
 * Tests that need a PostgreSQL server use TEST_DATABASE_URL, else DATABASE_URL, else the local server.
 * A template database is migrated once here; each test file clones it (CREATE DATABASE … TEMPLATE).
 */
const fallbackUrl = "postgres://postgres@127.0.0.1:5432/postgres";

export default async function setup(project: TestProject) {
  const url = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? fallbackUrl;
  const admin = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 3 });
  try {
    await admin`select 1`;
  } catch (error) {
    await admin.end();
    if (process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL) throw error;
    process.stderr.write(
      `\nNo PostgreSQL at ${fallbackUrl}: server suites are skipped, PGlite suites run.\n\n`,
    );
    project.provide("pgUrl", "");
    return;
  }
  const template = `herald_test_template_${process.pid}`;
  await admin.unsafe(`drop database if exists ${template} with (force)`);
  await admin.unsafe(`create database ${template}`);
  const templateUrl = withDatabase(url, template);
  const database = await openDatabase({ url: templateUrl });
  await migrate(database.db);
  await database.close();
  project.provide("pgUrl", url);
  project.provide("pgTemplate", template);
  return async () => {
    await admin.unsafe(`drop database if exists ${template} with (force)`);
    await admin.end();
  };
}

export function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

declare module "vitest" {
  export interface ProvidedContext {
    pgUrl: string;
    pgTemplate: string;
  }
}
