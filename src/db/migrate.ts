import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { type Db, type Executor, query } from "./client.js";

/**
 * Migrations are drizzle-kit's output in `drizzle/` (listed by `meta/_journal.json`), each with a
 * hand-written reverse in `drizzle/down/`. They run under an advisory lock so processes starting at once
 * take turns, and each step commits with its record in `herald_migrations` (tag and the SHA-256 of its file).
 * Before changing anything, the ledger is checked against this Herald's files: an applied migration whose
 * file changed since, or one this Herald does not know (a newer Herald migrated the database), stops it.
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

/**
 * An applied migration's recorded hash differs from this Herald's file of the same tag: the database was
 * migrated with other files (an edited migration, or another build), so its schema is not the one this
 * Herald's code and later migrations expect.
 */
export class MigrationMismatchError extends Error {
  override name = "MigrationMismatchError";
  readonly code = "migration_mismatch";
  constructor(readonly tags: string[]) {
    super(
      `The database was migrated with different migration files: the hash recorded in herald_migrations for ${tags.join(", ")} ` +
        `does not match this Herald's drizzle/ file${tags.length === 1 ? "" : "s"}. Run the Herald version that migrated ` +
        "this database, or restore the migration files it was migrated with (an applied migration is never " +
        "edited: a change goes in a new migration).",
    );
  }
}

/**
 * The database holds applied migrations this Herald does not know: a newer Herald migrated it. Running
 * against that schema would be half-compatible, so Herald refuses instead.
 */
export class DatabaseTooNewError extends Error {
  override name = "DatabaseTooNewError";
  readonly code = "database_too_new";
  constructor(readonly tags: string[]) {
    super(
      `The database was migrated by a newer Herald: migration${tags.length === 1 ? "" : "s"} ${tags.join(", ")} ` +
        `${tags.length === 1 ? "is" : "are"} applied but unknown to this version. Run that newer Herald ` +
        `(upgrade this one), or revert them first with its \`herald migrate --down ${tags.length}\`.`,
    );
  }
}

/** How the database's ledger compares with this Herald's migration files. */
export interface MigrationState {
  /** Known here, not applied yet. */
  pending: string[];
  /** Applied, unknown here (a newer Herald's). */
  unknown: string[];
  /** Applied with a hash other than this Herald's file's. */
  mismatched: string[];
}

/**
 * This process's migrations, read once: the files it started with are the ones its code matches, even if
 * an upgrade replaces them on disk while it runs (and /readyz need not read and hash them per request).
 */
let known: Migration[] | undefined;
const knownMigrations = () => {
  known ??= readMigrations();
  return known;
};

/** Compare the ledger's rows (ordered by tag) with this Herald's migrations. */
function compare(applied: { tag: string; hash: string }[]): MigrationState {
  const migrations = knownMigrations();
  const byTag = new Map(migrations.map((m) => [m.tag, m]));
  const done = new Set(applied.map((r) => r.tag));
  return {
    pending: migrations.filter((m) => !done.has(m.tag)).map((m) => m.tag),
    unknown: applied.filter((r) => !byTag.has(r.tag)).map((r) => r.tag),
    mismatched: applied
      .filter((r) => byTag.has(r.tag) && byTag.get(r.tag)!.hash !== r.hash)
      .map((r) => r.tag),
  };
}

/**
 * The error that keeps Herald from running against this database, if any. A newer Herald's database comes
 * first: upgrading to it also resolves a mismatch it would explain.
 */
export function incompatibility(
  state: MigrationState,
): DatabaseTooNewError | MigrationMismatchError | undefined {
  if (state.unknown.length > 0) return new DatabaseTooNewError(state.unknown);
  if (state.mismatched.length > 0) return new MigrationMismatchError(state.mismatched);
  return undefined;
}

async function ensureLedger(executor: Executor) {
  await executor.execute(sql`create table if not exists herald_migrations (
    tag text primary key, hash text not null, applied_at timestamptz not null default now())`);
}

async function ledger(executor: Executor): Promise<{ tag: string; hash: string }[]> {
  return query<{ tag: string; hash: string }>(
    executor,
    sql`select tag, hash from herald_migrations order by tag`,
  );
}

/** The ledger, checked: throws `DatabaseTooNewError` or `MigrationMismatchError` (see `incompatibility`). */
async function checkedLedger(executor: Executor): Promise<{ tag: string; hash: string }[]> {
  const applied = await ledger(executor);
  const error = incompatibility(compare(applied));
  if (error) throw error;
  return applied;
}

async function runStatements(executor: Executor, list: string[]) {
  for (const statement of list) await executor.execute(sql.raw(statement));
}

export interface MigrateResult {
  applied: string[];
}

/**
 * Apply every pending migration, then make sure the partitions of the coming months exist. Rejects with
 * `DatabaseTooNewError` or `MigrationMismatchError`, changing nothing, when the ledger disagrees with the files.
 */
export async function migrate(db: Db, now: Date = new Date()): Promise<MigrateResult> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${lockKey})`);
    await ensureLedger(tx);
    const done = new Set((await checkedLedger(tx)).map((r) => r.tag));
    const applied: string[] = [];
    for (const migration of knownMigrations()) {
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
 * Make sure the partitions around `now` exist (see above): the previous, current and next two months. Run by
 * every migration; while Herald runs, its workers keep HERALD_PARTITIONS_AHEAD months made ahead
 * (`ensureMonthsAhead`, db/partitionUpkeep.ts), so a server up for months still has next month's partitions.
 */
export async function maintainPartitions(executor: Executor, now: Date = new Date()): Promise<void> {
  for (const table of partitionedTables) {
    await executor.execute(
      sql`select herald_ensure_partitions(${table}, ${now.toISOString()}::timestamptz - ${partitionMonthsBack} * interval '1 month',
        ${partitionMonthsBack + 1 + partitionMonthsAhead})`,
    );
  }
}

/**
 * Revert the last `steps` applied migrations with their down scripts, newest first. Checks the ledger as
 * `migrate` does: a down script is only right for the up script it was written with.
 */
export async function migrateDown(db: Db, steps: number): Promise<MigrateResult> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${lockKey})`);
    await ensureLedger(tx);
    const done = (await checkedLedger(tx)).map((r) => r.tag);
    const byTag = new Map(knownMigrations().map((m) => [m.tag, m]));
    const reverted: string[] = [];
    for (const tag of done.reverse().slice(0, steps)) {
      // Every applied tag is known here (checked above).
      const migration = byTag.get(tag)!;
      await runStatements(tx, migration.down);
      await tx.execute(sql`delete from herald_migrations where tag = ${tag}`);
      reverted.push(tag);
    }
    return { applied: reverted };
  });
}

/**
 * How the database compares with this Herald's migrations, read without a lock or a change (the ledger
 * missing counts as none applied): what /readyz asks.
 */
export async function migrationState(executor: Executor): Promise<MigrationState> {
  const exists = await query(executor, sql`select to_regclass('herald_migrations') is not null as found`);
  return compare(exists[0]?.found === true ? await ledger(executor) : []);
}
