import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { describe, expect, inject, it } from "vitest";
import { readMigrations } from "../src/db/migrate.js";
import { hasPostgres } from "./support/databases.js";
import { withDatabase } from "./support/globalSetup.js";
import { cleanEnv, spawnProcess } from "./support/process.js";

const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

describe.skipIf(!hasPostgres())("herald migrate", () => {
  it("lets processes started at once take turns (advisory lock), then --down N reverts", async () => {
    const base = inject("pgUrl");
    const name = `herald_migrate_${randomBytes(4).toString("hex")}`;
    const admin = postgres(base, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    const url = withDatabase(base, name);
    try {
      const runs = [0, 1, 2].map(() =>
        spawnProcess(process.execPath, [cli, "migrate"], { env: cleanEnv({ DATABASE_URL: url }) }),
      );
      const codes = await Promise.all(runs.map((r) => r.exited));
      expect(codes, runs.map((r) => r.output()).join("\n")).toEqual([0, 0, 0]);
      const outputs = runs.map((r) => r.output());
      // Exactly one process applied the migrations; the others found nothing to do.
      expect(outputs.filter((o) => o.includes("applied: 0000_functions"))).toHaveLength(1);
      expect(outputs.filter((o) => o.includes("nothing to apply"))).toHaveLength(2);

      const db = postgres(url, { max: 1, onnotice: () => {} });
      const applied = await db`select tag from herald_migrations order by tag`;
      expect(applied.map((r) => r.tag)).toEqual(readMigrations().map((m) => m.tag));

      const down = spawnProcess(process.execPath, [cli, "migrate", "--down", "1"], {
        env: cleanEnv({ DATABASE_URL: url }),
      });
      expect(await down.exited).toBe(0);
      expect(down.output()).toContain(`reverted: ${readMigrations().at(-1)!.tag}`);
      const left = await db`select tag from herald_migrations order by tag`;
      expect(left.map((r) => r.tag)).toEqual(
        readMigrations()
          .slice(0, -1)
          .map((m) => m.tag),
      );
      await db.end();
    } finally {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  }, 60_000);
});
