import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { type Db, type Executor, query } from "./client.js";

/**
 * Migrations are drizzle-kit's output in `drizzle/` (listed by `meta/_journal.json`), each with a
 * hand-written reverse in `drizzle/down/`. They run under an advisory lock so processes starting at once
 * take turns, and each step commits with its record in `herald_migrations`.
 */

export interface Migration {
  tag: string;
  up: string[];
  down: string[];
  hash: string;
}

const migrationsDir = new URL("../../drizzle/", import.meta.url);
const lockKey = 0x4845524c; // "HERL"
/**
 * Partitions made at migrate time: the previous month (providers retry for days, so events of last month
 * still arrive in the first days of a month), this month and the next two. Older or later months are made on
 * demand by the writers.
 */
const partitionMonthsBack = 1;
const partitionMonthsAhead = 2;
export const partitionedTables = ["events", "message_events"] as const;

const statements = (text: string) =>
  text
    .split("--> statement-breakpoint")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

export function readMigrations(): Migration[] {
  const journal = JSON.parse(readFileSync(new URL("meta/_journal.json", migrationsDir), "utf8")) as {
    entries: { tag: string }[];
  };
  return journal.entries.map(({ tag }) => {
    const up = readFileSync(new URL(`${tag}.sql`, migrationsDir), "utf8");
    const down = readFileSync(new URL(`down/${tag}.sql`, migrationsDir), "utf8");
    return {
      tag,
      up: statements(up),
      down: statements(down),
      hash: createHash("sha256").update(up).digest("hex"),
    };
  });
}

async function ensureLedger(executor: Executor) {
  await executor.execute(sql`create table if not exists herald_migrations (
    tag text primary key, hash text not null, applied_at timestamptz not null default now())`);
}

async function appliedTags(executor: Executor): Promise<string[]> {
  const rows = await query<{ tag: string }>(executor, sql`select tag from herald_migrations order by tag`);
  return rows.map((r) => r.tag);
}

async function runStatements(executor: Executor, list: string[]) {
  for (const statement of list) await executor.execute(sql.raw(statement));
}

export interface MigrateResult {
  applied: string[];
}

/** Apply every pending migration, then make sure the partitions of the coming months exist. */
export async function migrate(db: Db, now: Date = new Date()): Promise<MigrateResult> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${lockKey})`);
    await ensureLedger(tx);
    const done = new Set(await appliedTags(tx));
    const applied: string[] = [];
    for (const migration of readMigrations()) {
      if (done.has(migration.tag)) continue;
      await runStatements(tx, migration.up);
      await tx.execute(
        sql`insert into herald_migrations (tag, hash) values (${migration.tag}, ${migration.hash})`,
      );
      applied.push(migration.tag);
    }
    const hasPartitioning = await query(
      tx,
      sql`select 1 from pg_proc where proname = 'herald_ensure_partitions'`,
    );
    if (hasPartitioning.length > 0) await maintainPartitions(tx, now);
    return { applied };
  });
}

/**
 * Make sure the partitions around `now` exist (see above). Run by every migration and, while Herald runs,
 * hourly, so a server up for months still has next month's partitions before traffic needs them.
 */
export async function maintainPartitions(executor: Executor, now: Date = new Date()): Promise<void> {
  for (const table of partitionedTables) {
    await executor.execute(
      sql`select herald_ensure_partitions(${table}, ${now.toISOString()}::timestamptz - ${partitionMonthsBack} * interval '1 month',
        ${partitionMonthsBack + 1 + partitionMonthsAhead})`,
    );
  }
}

/** Revert the last `steps` applied migrations with their down scripts, newest first. */
export async function migrateDown(db: Db, steps: number): Promise<MigrateResult> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${lockKey})`);
    await ensureLedger(tx);
    const done = await appliedTags(tx);
    const byTag = new Map(readMigrations().map((m) => [m.tag, m]));
    const reverted: string[] = [];
    for (const tag of done.reverse().slice(0, steps)) {
      const migration = byTag.get(tag);
      if (!migration) throw new Error(`Migration ${tag} is applied but its files are missing`);
      await runStatements(tx, migration.down);
      await tx.execute(sql`delete from herald_migrations where tag = ${tag}`);
      reverted.push(tag);
    }
    return { applied: reverted };
  });
}

/** Tags of migrations not yet applied (the ledger missing counts as none applied). */
export async function pendingMigrations(executor: Executor): Promise<string[]> {
  const exists = await query(executor, sql`select 1 from pg_class where relname = 'herald_migrations'`);
  const done = new Set(exists.length > 0 ? await appliedTags(executor) : []);
  return readMigrations()
    .map((m) => m.tag)
    .filter((tag) => !done.has(tag));
}
