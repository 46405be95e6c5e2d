import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import {
  DatabaseTooNewError,
  MigrationMismatchError,
  migrate,
  migrateDown,
  readMigrations,
} from "../src/db/migrate.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { call } from "./support/http.js";

const futureTag = "9999_from_a_newer_herald";

/** The ledger and this Herald's migration files must agree, or Herald neither migrates nor reports ready. */
describe.each(backends())("migration ledger checks (%s)", (backend) => {
  let t: TestDatabase;
  let h: HeraldApp;
  const logLines: { level: number; msg: string; reason?: string }[] = [];

  beforeAll(async () => {
    t = await createTestDatabase(backend);
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n").filter(Boolean)) logLines.push(JSON.parse(line));
        done();
      },
    });
    h = await buildApp({
      database: t.database,
      config: { adminToken: undefined, bodyLimitBytes: 1 << 20, databaseTimeoutMs: 2000 },
      logger: { level: "info", stream },
    });
  });
  afterAll(async () => {
    await h?.app.close();
    await t?.drop();
  });

  const ledger = async () =>
    query<{ tag: string; hash: string }>(
      t.database.db,
      sql`select tag, hash from herald_migrations order by tag`,
    );
  const readyz = () => call(h.app, { method: "GET", url: "/readyz" });

  it("on an unchanged database, migrate is a no-op and /readyz is 200", async () => {
    const before = await ledger();
    expect(before.map((r) => r.tag)).toEqual(readMigrations().map((m) => m.tag));
    expect(await migrate(t.database.db)).toEqual({ applied: [] });
    expect(await ledger()).toEqual(before);
    const ready = await readyz();
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: "ready", detail: "database reachable, migrations current" });
  });

  it("a stored hash that differs from the file: migrate rejects naming the tag, /readyz 503", async () => {
    const tag = readMigrations()[3]!.tag;
    const hash = (await ledger()).find((r) => r.tag === tag)!.hash;
    await t.database.db.execute(
      sql`update herald_migrations set hash = ${"0".repeat(64)} where tag = ${tag}`,
    );
    onTestFinished(async () => {
      await t.database.db.execute(sql`update herald_migrations set hash = ${hash} where tag = ${tag}`);
    });

    const error = await migrate(t.database.db).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationMismatchError);
    expect(error).toMatchObject({ code: "migration_mismatch", tags: [tag] });
    expect((error as Error).message).toContain(tag);
    expect((error as Error).message).toContain("migrated with different migration files");
    // Reverting is refused too: a down script only fits the up script it was written with.
    await expect(migrateDown(t.database.db, 1)).rejects.toBeInstanceOf(MigrationMismatchError);
    expect((await ledger()).map((r) => r.tag)).toEqual(readMigrations().map((m) => m.tag));

    const answer = await readyz();
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ status: "unavailable", reason: "migration_mismatch" });
    expect(answer.body.detail).toContain(tag);
  });

  it("applied migrations this Herald does not know: migrate rejects naming them, nothing changes", async () => {
    await t.database.db.execute(sql`insert into herald_migrations (tag, hash) values (${futureTag}, 'abc')`);
    onTestFinished(async () => {
      await t.database.db.execute(sql`delete from herald_migrations where tag = ${futureTag}`);
    });
    const error = await migrate(t.database.db).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseTooNewError);
    expect(error).toMatchObject({ code: "database_too_new", tags: [futureTag] });
    expect((error as Error).message).toContain(futureTag);
    expect((error as Error).message).toContain("migrated by a newer Herald");
    // `--down` of an older Herald cannot revert what it has no down script for.
    await expect(migrateDown(t.database.db, 1)).rejects.toBeInstanceOf(DatabaseTooNewError);
    expect((await ledger()).map((r) => r.tag)).toEqual([...readMigrations().map((m) => m.tag), futureTag]);
  });

  it("a running app whose database a newer Herald migrates: /readyz 503 with the reason, logged once, 200 once fixed", async () => {
    expect((await readyz()).status).toBe(200);
    const linesBefore = logLines.length;

    // Another process, a newer Herald, migrates the database.
    await t.database.db.execute(sql`insert into herald_migrations (tag, hash) values (${futureTag}, 'abc')`);
    onTestFinished(async () => {
      await t.database.db.execute(sql`delete from herald_migrations where tag = ${futureTag}`);
    });
    for (let i = 0; i < 3; i++) {
      const answer = await readyz();
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({ status: "unavailable", reason: "database_too_new" });
      expect(answer.body.detail).toContain(futureTag);
      expect(answer.body.detail).toContain("migrated by a newer Herald");
    }
    const logged = logLines.slice(linesBefore).filter((l) => l.reason === "database_too_new");
    expect(logged).toHaveLength(1);
    expect(logged.at(-1)).toMatchObject({ level: 50 });
    expect(logged.at(-1)!.msg).toContain(futureTag);

    // Fixed (the newer migration reverted): ready again, and that is logged too.
    await t.database.db.execute(sql`delete from herald_migrations where tag = ${futureTag}`);
    expect((await readyz()).status).toBe(200);
    expect(logLines.slice(linesBefore).filter((l) => /ready again/.test(l.msg))).toHaveLength(1);
  });
});
