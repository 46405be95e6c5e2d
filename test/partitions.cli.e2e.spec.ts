import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServerDatabase, hasPostgres } from "./support/databases.js";
import { cleanEnv, spawnProcess } from "./support/process.js";

const main = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));

const monthName = (offset: number) => {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  return `${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
};

/** `herald partitions ensure` and `herald partitions list`, run as an operator runs them (from source). */
describe.runIf(hasPostgres())("herald partitions (PostgreSQL)", () => {
  let server: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    server = await createServerDatabase();
  });
  afterAll(async () => {
    await server?.drop();
  });

  async function herald(args: string[], extra: NodeJS.ProcessEnv = {}) {
    const run = spawnProcess(process.execPath, ["--import", "tsx", main, ...args], {
      env: cleanEnv({ DATABASE_URL: server.url, ...extra }),
    });
    const code = await run.exited;
    return { code, out: run.output() };
  }

  it("makes the months ahead with a line per table, then finds them there", async () => {
    const first = await herald(["partitions", "ensure", "--months", "5"]);
    expect(first.code).toBe(0);
    // Migrations made the previous month to two ahead: ensure makes the third to the fifth.
    const made = [3, 4, 5].map(monthName);
    expect(first.out).toContain(
      `events: 4/7 months were there, made ${made.map((m) => `events_${m}`).join(", ")}`,
    );
    expect(first.out).toContain(
      `message_events: 4/7 months were there, made ${made.map((m) => `message_events_${m}`).join(", ")}`,
    );
    expect(first.out).toContain("partitions ensured 5 months ahead: 6 made, 2 tables");
    // HERALD_PARTITIONS_AHEAD is the default of --months.
    const again = await herald(["partitions", "ensure"], { HERALD_PARTITIONS_AHEAD: "4" });
    expect(again.code).toBe(0);
    expect(again.out).toContain("events: 6/6 months were there\n");
    expect(again.out).toContain("partitions ensured 4 months ahead: 0 made, 2 tables");
  }, 60_000);

  it("lists each partition: range, rows, size, archived", async () => {
    const sql = postgres(server.url, { max: 1, onnotice: () => {} });
    try {
      const [tenant] = await sql<{ id: string }[]>`insert into tenants (name) values ('listed') returning id`;
      await sql`insert into events (tenant_id, event_type, source, ts)
        select ${tenant!.id}::uuid, 'order.placed', 'manual', date_trunc('month', now()) + i * interval '1 minute'
        from generate_series(1, 100) i`;
      await sql`analyze events`;
    } finally {
      await sql.end();
    }
    const listed = await herald(["partitions", "list"]);
    expect(listed.code).toBe(0);
    const lines = listed.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^partition\s+range\s+rows\s+size\s+archived$/);
    const current = lines.find((l) => l.startsWith(`events_${monthName(0)} `));
    expect(current).toMatch(
      /^events_\d{4}_\d{2}\s+\d{4}-\d{2}-01 \.\. \d{4}-\d{2}-01\s+~100\s+\d+\.\d kB\s+no$/,
    );
    expect(lines.filter((l) => l.startsWith("message_events_"))).toHaveLength(7);
    const exact = await herald(["partitions", "list", "--exact"]);
    expect(exact.out).toMatch(new RegExp(`events_${monthName(0)}\\s+\\S+ \\.\\. \\S+\\s+100\\s`));
  }, 60_000);

  it("archives a month by hand and imports it back, once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "herald-cli-archives-"));
    const sql = postgres(server.url, { max: 1, onnotice: () => {} });
    const month = monthName(-4);
    const label = month.replace("_", "-");
    try {
      const [tenant] = await sql<
        { id: string }[]
      >`insert into tenants (name) values ('archived') returning id`;
      const start = `${label}-01T00:00:00Z`;
      await sql`select herald_ensure_partitions('events', ${start}::timestamptz, 1)`;
      await sql`insert into events (tenant_id, event_type, source, ts)
        select ${tenant!.id}::uuid, 'order.placed', 'manual', ${start}::timestamptz + i * interval '1 minute'
        from generate_series(1, 500) i`;
      // A month is dropped only once the rollups count it; how they count is not what this tests.
      await sql`update event_rollup_checkpoint set transaction_id = pg_current_xact_id(), position = 9e15`;
      const env = { HERALD_ARCHIVE_DIR: dir };
      const archived = await herald(["partitions", "archive", "--month", label], env);
      expect(archived.code).toBe(0);
      expect(archived.out).toContain("archived 1 partition(s): 500 rows");
      expect((await sql`select to_regclass(${`events_${month}`}) as t`)[0]!.t).toBeNull();

      const file = join(dir, `events_${month}.copy.gz`);
      const imported = await herald(["import", file], env);
      expect(imported.code).toBe(0);
      expect(imported.out).toContain(`imported events_${month} (${label}): 500 of its 500 rows added`);
      const [count] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(`events_${month}`)}`;
      expect(count!.n).toBe(500);
      const again = await herald(["import", file], env);
      expect(again.out).toContain(`imported events_${month} (${label}): 0 of its 500 rows added`);
      const missing = await herald(["import", join(dir, "events_1999_01.copy.gz")], env);
      expect(missing.code).not.toBe(0);
      expect(missing.out).toContain("no archive of events_1999_01 is recorded");
    } finally {
      await sql.end();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("refuses a bad --months", async () => {
    const bad = await herald(["partitions", "ensure", "--months", "-1"]);
    expect(bad.code).not.toBe(0);
  }, 30_000);
});
