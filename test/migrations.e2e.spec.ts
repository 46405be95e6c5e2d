import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/client.js";
import { migrate, readMigrations } from "../src/db/migrate.js";
import { backends, createServerDatabase } from "./support/databases.js";
import { cleanEnv, spawnProcess } from "./support/process.js";

const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

/** The built CLI refuses a database its migration files disagree with: the message alone, exit code 1. */
describe.each(backends())("herald against a database it does not match (%s)", (backend) => {
  let env: NodeJS.ProcessEnv;
  let open: () => ReturnType<typeof openDatabase>;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    if (backend === "postgres") {
      const server = await createServerDatabase();
      env = cleanEnv({ DATABASE_URL: server.url, LOG_LEVEL: "warn" });
      open = () => openDatabase({ url: server.url, poolSize: 1 });
      cleanup = server.drop;
    } else {
      const dir = mkdtempSync(join(tmpdir(), "herald-migrations-"));
      env = cleanEnv({ HERALD_DATA_DIR: join(dir, "data"), LOG_LEVEL: "warn" });
      open = () => openDatabase({ dataDir: join(dir, "data") });
      cleanup = async () => rmSync(dir, { recursive: true, force: true });
      const database = await open();
      await migrate(database.db);
      await database.close();
    }
  }, 120_000);
  afterAll(async () => cleanup?.());

  /** Run one statement on the database with no Herald process holding it (PGlite allows one at a time). */
  const change = async (statement: ReturnType<typeof sql>) => {
    const database = await open();
    try {
      await database.db.execute(statement);
    } finally {
      await database.close();
    }
  };

  const expectRefused = async (args: string[], message: RegExp) => {
    const run = spawnProcess(process.execPath, [cli, ...args], { env });
    const code = await run.exited;
    const output = run.output();
    expect(code, output).toBe(1);
    expect(output).toMatch(message);
    expect(output).not.toMatch(/^\s+at /m); // no stack trace
    expect(output).not.toContain("Listening");
  };

  it("a tampered migration hash: `migrate` and `serve` exit 1 naming the migration", async () => {
    const tag = readMigrations()[2]!.tag;
    await change(sql`update herald_migrations set hash = 'tampered' || hash where tag = ${tag}`);
    try {
      const message = new RegExp(`migrated with different migration files.*${tag}`);
      await expectRefused(["migrate"], message);
      await expectRefused(["serve"], message);
    } finally {
      await change(sql`update herald_migrations set hash = substr(hash, 9) where tag = ${tag}`);
    }
  }, 60_000);

  it("a database migrated by a newer Herald: `migrate` and `worker` exit 1 naming the migration", async () => {
    const tag = "9999_from_a_newer_herald";
    await change(sql`insert into herald_migrations (tag, hash) values (${tag}, 'abc')`);
    try {
      const message = new RegExp(`migrated by a newer Herald.*${tag}`);
      await expectRefused(["migrate"], message);
      await expectRefused(["worker"], message);
    } finally {
      await change(sql`delete from herald_migrations where tag = ${tag}`);
    }
    // Fixed: the CLI migrates again (nothing to apply).
    const again = spawnProcess(process.execPath, [cli, "migrate"], { env });
    expect(await again.exited, again.output()).toBe(0);
    expect(again.output()).toContain("nothing to apply");
  }, 60_000);
});
