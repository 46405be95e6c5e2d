import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/client.js";
import { resetPartitionCache } from "../src/db/partitions.js";
import { projectRollups, rebuildRollups } from "../src/events/rollups.js";
import { eventStats } from "../src/events/stats.js";
import { eventTotals } from "../src/events/totals.js";
import {
  copyOut,
  importArchive,
  monthLabel,
  planRetention,
  readArchiveFile,
  runRetention,
} from "../src/retention/index.js";
import { createServerDatabase, hasPostgres } from "./support/databases.js";
import { cleanEnv, spawnProcess } from "./support/process.js";
import { eventually } from "./support/wait.js";

/**
 * Retention on a real server: archive → verify → drop → import gives back the very same rows (a checksum over
 * COPY of the month, ordered, before and after), a process killed between the steps leaves the partition or a
 * verified archive and a re-run completes, the current and previous months are never touched, a dry run
 * changes nothing, and the rollups keep counting the dropped month (also through a rebuild).
 */

const worker = fileURLToPath(new URL("./support/retention-worker.mjs", import.meta.url));
const now = new Date();
const monthStart = (back: number) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1));
const partition = (table: string, month: Date) =>
  `${table}_${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, "0")}`;

async function copyChecksum(sql: postgres.Sql, table: string, column: string, month: Date) {
  const to = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1));
  return copyOut(
    sql,
    `copy (select * from ${table} where ${column} >= '${month.toISOString()}' and ${column} < '${to.toISOString()}' order by id) to stdout`,
    async (stream) => {
      const hash = createHash("sha256");
      let lines = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        hash.update(chunk);
        for (const byte of chunk) if (byte === 10) lines++;
      }
      return { sha256: hash.digest("hex"), rows: lines };
    },
  );
}

/** Rows awkward to carry: jsonb with unicode, escapes, tabs, newlines, backslashes; µs timestamps; nulls. */
async function seed(sql: postgres.Sql, tenant: string, month: Date, n: number) {
  await sql`select herald_ensure_partitions('events', ${month}, 1)`;
  await sql`select herald_ensure_partitions('message_events', ${month}, 1)`;
  await sql`
    insert into events (tenant_id, event_type, source, contact_id, session_id, payload, metadata, event_key,
      correlation_id, sequence_number, ts)
    select ${tenant}, 'type.' || (i % 7), (array['system','webhook','manual'])[1 + i % 3]::event_source,
      case when i % 3 = 0 then null else 'contact-' || i end, null,
      jsonb_build_object('i', i, 'text', E'tab\\there\\nnewline \\\\ back "quote" é 🙂', 'n', i * 1.5,
        'nested', jsonb_build_array(1, null, true, 'x')),
      case when i % 2 = 0 then '{}'::jsonb else jsonb_build_object('m', i) end,
      case when i % 5 = 0 then null else 'key-' || i end, null, case when i % 4 = 0 then null else i end,
      ${month}::timestamptz + (i * interval '1 second') + (i % 997) * interval '1 microsecond'
    from generate_series(1, ${n}) i`;
  await sql`
    insert into message_events (tenant_id, provider, provider_message_id, dedupe_key, type, event_at, payload,
      machine_open, url)
    select ${tenant}, 'sendgrid', 'msg-' || i, 'd-' || i, 'open',
      ${month}::timestamptz + (i * interval '1 second') + (i % 991) * interval '1 microsecond',
      jsonb_build_object('i', i, 's', E'line\\nbreak'), case when i % 2 = 0 then null else i % 3 = 0 end,
      case when i % 3 = 0 then null else 'https://x.test/' || i end
    from generate_series(1, ${Math.ceil(n / 2)}) i`;
}

const rollupTotal = async (sql: postgres.Sql, tenant: string, month: Date) => {
  const to = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1));
  const [hourly] = await sql<{ n: number }[]>`select coalesce(sum(count), 0)::float8 as n from event_rollups
    where tenant_id = ${tenant} and hour >= ${month} and hour < ${to}`;
  const [daily] = await sql<
    { n: number }[]
  >`select coalesce(sum(count), 0)::float8 as n from event_rollups_daily
    where tenant_id = ${tenant} and day >= ${month} and day < ${to}`;
  const [monthly] = await sql<
    { n: number }[]
  >`select coalesce(sum(count), 0)::float8 as n from event_rollups_monthly
    where tenant_id = ${tenant} and month >= ${month} and month < ${to}`;
  return { hourly: hourly!.n, daily: daily!.n, monthly: monthly!.n };
};

describe.runIf(hasPostgres())("retention on postgres", () => {
  let url: string;
  let drop: () => Promise<void>;
  let sql: postgres.Sql;
  let database: Database;
  let dir: string;
  let tenant: string;
  const old = monthStart(5);

  beforeEach(async () => {
    ({ url, drop } = await createServerDatabase());
    sql = postgres(url, { max: 3, onnotice: () => {} });
    database = await openDatabase({ url, poolSize: 2 });
    resetPartitionCache();
    dir = await mkdtemp(join(tmpdir(), "herald-archives-"));
    const [row] = await sql<{ id: string }[]>`insert into tenants (name) values ('retention') returning id`;
    tenant = row!.id;
    await seed(sql, tenant, old, 3000);
    await seed(sql, tenant, monthStart(1), 200);
    await seed(sql, tenant, monthStart(0), 100);
    await rebuildRollups(database.db);
    await projectedEverything();
  });

  /**
   * The projection reads only transactions older than every one running on the server, whatever its
   * database: other suites' open transactions can leave a rebuild short of the last events, and a month is
   * dropped only once all its events are counted. Project until none is left past the checkpoint.
   */
  const projectedEverything = () =>
    eventually(
      async () => {
        while ((await projectRollups(database.db, 10_000)) > 0) {}
        const [row] = await sql<
          { n: number }[]
        >`select count(*)::int as n from events e, event_rollup_checkpoint c
          where (e.transaction_id, e.position) > (c.transaction_id, c.position)`;
        return row!.n === 0;
      },
      // Within the hook's 60 s, to fail with this message rather than a timeout.
      45_000,
      "the projection to count every event",
    );

  afterEach(async () => {
    await database.close();
    await sql.end();
    await drop();
    await rm(dir, { recursive: true, force: true });
  });

  const exists = async (name: string) =>
    (await sql<{ e: boolean }[]>`select to_regclass(${name}) is not null as e`)[0]!.e;

  /** The retention worker run with `env`, killed (SIGKILL, by itself) once it reports `step` on the old month. */
  async function killedAfter(env: NodeJS.ProcessEnv, step: string) {
    const child = spawnProcess(process.execPath, ["--import", "tsx", worker], {
      env: { ...env, KILL_AFTER: step },
    });
    await child.exited;
    expect(child.child.signalCode).toBe("SIGKILL");
    expect(child.output()).toContain(`step ${step} ${partition("events", old)}`);
  }

  it("archive → verify → drop → import gives byte-identical rows, twice changes nothing, rollups keep the month", async () => {
    const events = await copyChecksum(sql, "events", "ts", old);
    const messages = await copyChecksum(sql, "message_events", "event_at", old);
    expect(events.rows).toBe(3000);
    expect(messages.rows).toBe(1500);
    const counted = await rollupTotal(sql, tenant, old);
    expect(counted).toEqual({ hourly: 3000, daily: 3000, monthly: 3000 });
    const totals = await eventTotals(database.db, { tenantId: tenant });

    const result = await runRetention(sql, { archiveDir: dir, retentionMonths: 3 });
    expect(result.months.map((m) => `${m.table} ${m.month} ${m.from}`)).toEqual([
      `events ${monthLabel(old)} new`,
      `message_events ${monthLabel(old)} new`,
    ]);
    expect(result.rows).toBe(4500);
    expect(await exists(partition("events", old))).toBe(false);
    expect(await exists(partition("message_events", old))).toBe(false);
    expect((await copyChecksum(sql, "events", "ts", old)).rows).toBe(0);
    const rows =
      await sql`select table_name, state, rows::int, sha256, content_sha256, path from archives order by table_name`;
    expect(rows.map((r) => [r.table_name, r.state, r.rows])).toEqual([
      ["events", "dropped", 3000],
      ["message_events", "dropped", 1500],
    ]);
    // The archive reads back as recorded.
    const read = await readArchiveFile(rows[0]!.path);
    expect(read).toMatchObject({
      rows: 3000,
      sha256: rows[0]!.sha256,
      contentSha256: rows[0]!.content_sha256,
    });

    // Totals keep the month: its rollups stay, through a rebuild too; so does the time range.
    expect(await rollupTotal(sql, tenant, old)).toEqual(counted);
    expect(await eventTotals(database.db, { tenantId: tenant })).toMatchObject({
      total: totals.total,
      timeRange: totals.timeRange,
    });
    // Stats still count it, and say which range comes from an archived month.
    const range = { from: old.toISOString(), to: monthStart(4).toISOString() };
    const stats = await eventStats(database.db, { tenantId: tenant, start: old, end: monthStart(4) }, [
      "type",
    ]);
    expect(stats.total).toBe(3000);
    expect(stats.archived).toEqual([{ ...range, counted: true }]);
    const byContact = await eventStats(
      database.db,
      { tenantId: tenant, contactId: "contact-1", start: old, end: monthStart(4) },
      ["type"],
    );
    expect(byContact).toMatchObject({ total: 0, archived: [{ ...range, counted: false }] });
    const recent = await eventStats(database.db, { tenantId: tenant, start: monthStart(1) }, ["type"]);
    expect(recent.archived).toBeUndefined();
    await rebuildRollups(database.db);
    await projectedEverything();
    expect(await rollupTotal(sql, tenant, old)).toEqual(counted);

    // A second run finds nothing to do.
    expect((await runRetention(sql, { archiveDir: dir, retentionMonths: 3 })).months).toEqual([]);

    const imported = await importArchive(sql, rows[0]!.path);
    expect(imported).toMatchObject({ table: "events", inserted: 3000, rows: 3000 });
    await importArchive(sql, rows[1]!.path);
    // message_events' foreign key was checked before the attach, and is the partition's as PostgreSQL makes it.
    expect(await shape(partition("message_events", old))).toEqual(
      await shape(partition("message_events", monthStart(1)), partition("message_events", old)),
    );
    expect(await copyChecksum(sql, "events", "ts", old)).toEqual(events);
    expect(await copyChecksum(sql, "message_events", "event_at", old)).toEqual(messages);
    expect((await sql`select state from archives order by table_name`).map((r) => r.state)).toEqual([
      "restored",
      "restored",
    ]);

    // Importing again changes nothing.
    expect(await importArchive(sql, rows[0]!.path)).toMatchObject({ inserted: 0 });
    expect(await copyChecksum(sql, "events", "ts", old)).toEqual(events);

    // Imported events are before the checkpoint: the projection does not count them twice; a rebuild counts them once.
    await rebuildRollups(database.db);
    await projectedEverything();
    expect(await rollupTotal(sql, tenant, old)).toEqual(counted);
    // A restored month is left alone by scheduled runs.
    expect((await planRetention(sql, { archiveDir: dir, retentionMonths: 3 })).length).toBe(0);
  });

  it("a late write after the drop is merged on import, and a file whose checksum differs is refused", async () => {
    await runRetention(sql, { archiveDir: dir, retentionMonths: 3 });
    const [archive] = await sql<{ path: string }[]>`select path from archives where table_name = 'events'`;
    // A late event for the archived month: its partition is made again.
    await sql`select herald_ensure_partitions('events', ${old}, 1)`;
    await sql`insert into events (tenant_id, event_type, source, ts) values (${tenant}, 'late', 'system', ${old})`;
    const merged = await importArchive(sql, archive!.path);
    expect(merged.inserted).toBe(3000);
    expect((await copyChecksum(sql, "events", "ts", old)).rows).toBe(3001);

    const forged = join(dir, partition("message_events", old) + ".copy.gz");
    await writeFile(forged, "not the archive");
    await expect(importArchive(sql, forged)).rejects.toThrow(/SHA-256 .* is not the archive's/);
  });

  it("a process killed after the export or after the verification: the partition is kept, a re-run completes", async () => {
    const before = await copyChecksum(sql, "events", "ts", old);
    const env = cleanEnv({ RETENTION_DB_URL: url, ARCHIVE_DIR: dir, RETENTION_MONTHS: "3" });
    for (const killAfter of ["exported", "verified"]) {
      await killedAfter(env, killAfter);
      // Killed between the archive and the drop: the partition is all there.
      expect(await exists(partition("events", old))).toBe(true);
      expect(await copyChecksum(sql, "events", "ts", old)).toEqual(before);
      const [row] = await sql`select state from archives where table_name = 'events'`;
      expect(row!.state).toBe(killAfter);
    }
    const plan = await planRetention(sql, { archiveDir: dir, retentionMonths: 3 });
    expect(plan.map((m) => `${m.table} ${m.from}`)).toEqual(["events verified", "message_events new"]);

    const rerun = spawnProcess(process.execPath, ["--import", "tsx", worker], { env });
    expect(await rerun.exited).toBe(0);
    expect(rerun.output()).toContain("done 4500");
    expect(await exists(partition("events", old))).toBe(false);
    const [archive] = await sql<{ path: string }[]>`select path from archives where table_name = 'events'`;
    await importArchive(sql, archive!.path);
    expect(await copyChecksum(sql, "events", "ts", old)).toEqual(before);
  });

  /** Tables in the schema where an import builds a month before attaching it. */
  const importTables = async () =>
    (
      await sql<{ name: string }[]>`select relname as name from pg_class
        where relnamespace = to_regnamespace('herald_import') and relkind = 'r' order by relname`
    ).map((r) => r.name);
  /** A partition's indexes and constraints, its name in them written as `as`'s. */
  const shape = async (name: string, as = name) => {
    const rows = await sql<{ line: string }[]>`
      select indexname || ': ' || indexdef as line from pg_indexes where tablename = ${name}
      union all
      select conname || ': ' || pg_get_constraintdef(oid) from pg_constraint where conrelid = ${name}::regclass
      order by 1`;
    return rows.map((r) => r.line.replaceAll(name, as));
  };

  it("an import killed after its copy or its indexes shows nothing; the next completes, indexed as any partition", async () => {
    const before = await copyChecksum(sql, "events", "ts", old);
    const made = await shape(partition("events", monthStart(1)), partition("events", old));
    expect(made.length).toBeGreaterThan(8);
    await runRetention(sql, { archiveDir: dir, retentionMonths: 3 });
    const [archive] = await sql<{ path: string }[]>`select path from archives where table_name = 'events'`;
    const env = cleanEnv({ RETENTION_DB_URL: url, IMPORT_FILE: archive!.path });
    for (const killAfter of ["copied", "indexed"]) {
      await killedAfter(env, killAfter);
      // Nothing of the month is visible: its table waits, unattached, in herald_import.
      expect(await exists(partition("events", old))).toBe(false);
      expect((await copyChecksum(sql, "events", "ts", old)).rows).toBe(0);
      expect(await importTables()).toEqual([partition("events", old)]);
      const [row] = await sql`select state from archives where table_name = 'events'`;
      expect(row!.state).toBe("dropped");
    }
    expect(await importArchive(sql, archive!.path)).toMatchObject({ inserted: 3000 });
    expect(await copyChecksum(sql, "events", "ts", old)).toEqual(before);
    expect(await importTables()).toEqual([]);
    // Index names and definitions, and constraints, are those PostgreSQL gives a partition it makes.
    expect(await shape(partition("events", old))).toEqual(made);
  });

  it("one import of an archive runs at a time; a partition a late write makes during it gets the rows", async () => {
    await runRetention(sql, { archiveDir: dir, retentionMonths: 3 });
    const [archive] = await sql<{ path: string }[]>`select path from archives where table_name = 'events'`;
    let second: unknown;
    const merged = await importArchive(sql, archive!.path, {
      afterStep: async (step) => {
        if (step === "copied") second = await importArchive(sql, archive!.path).catch((error) => error);
        if (step === "indexed") {
          await sql`select herald_ensure_partitions('events', ${old}, 1)`;
          await sql`insert into events (tenant_id, event_type, source, ts) values (${tenant}, 'late', 'system', ${old})`;
        }
      },
    });
    expect(String(second)).toMatch(/an import of this archive is already running/);
    expect(merged.inserted).toBe(3000);
    expect((await copyChecksum(sql, "events", "ts", old)).rows).toBe(3001);
    expect(await importTables()).toEqual([]);
    const [row] = await sql`select state from archives where table_name = 'events'`;
    expect(row!.state).toBe("restored");
  });

  it("never touches the current or the previous month; a dry run changes nothing", async () => {
    const current = await copyChecksum(sql, "events", "ts", monthStart(0));
    const previous = await copyChecksum(sql, "events", "ts", monthStart(1));
    for (const months of [0, 1]) {
      const plan = await planRetention(sql, { archiveDir: dir, retentionMonths: months });
      expect(
        plan.every((m) => m.month !== monthLabel(monthStart(0)) && m.month !== monthLabel(monthStart(1))),
      ).toBe(true);
    }
    await expect(
      runRetention(sql, { archiveDir: dir, retentionMonths: 1, month: monthLabel(monthStart(1)) }),
    ).rejects.toThrow(/never archived/);

    const dry = await runRetention(sql, { archiveDir: dir, retentionMonths: 1, dryRun: true });
    expect(dry.months.map((m) => m.partition)).toEqual([
      partition("events", old),
      partition("message_events", old),
    ]);
    expect(await sql`select * from archives`).toHaveLength(0);
    expect(await exists(partition("events", old))).toBe(true);

    await runRetention(sql, { archiveDir: dir, retentionMonths: 1 });
    expect(await copyChecksum(sql, "events", "ts", monthStart(0))).toEqual(current);
    expect(await copyChecksum(sql, "events", "ts", monthStart(1))).toEqual(previous);
    expect(await exists(partition("events", monthStart(1)))).toBe(true);
  });
});
