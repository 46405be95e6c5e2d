import type postgres from "postgres";
import { exportPartition, readArchiveFile } from "./files.js";

/**
 * Retention: months of the monthly-partitioned tables past `HERALD_RETENTION_MONTHS` are exported to an
 * archive file, recorded in `archives` (rows, SHA-256), read back and verified, then detached and dropped.
 *
 * The file is PostgreSQL's own COPY text format, gzip-compressed (`<partition>.copy.gz`): one line per row,
 * every value exactly as the server prints it (jsonb, microsecond timestamps, xid8, nulls as `\N`), so COPY
 * FROM puts back the very same rows — no value goes through JavaScript. It is also the fastest way out of and
 * back into PostgreSQL (a single streamed statement each way).
 *
 * The state in `archives` only moves forward, and each step commits before the next starts:
 * - `exported`: the file is written (to a temporary name, fsynced, then renamed) and its checksums recorded;
 * - `verified`: the file was read back — its SHA-256, its rows' count and their SHA-256 match the row;
 * - `dropped`: the partition was detached and dropped in the very transaction that set this state, after
 *   checking under its lock that it still holds the verified number of rows (a late write sends it back to
 *   export) and, for `events`, that the rollup projection has counted every one of them (totals and stats
 *   keep dropped months through the rollups: see `rebuildRollups`).
 * A crash anywhere leaves the partition (before `dropped`) or a verified archive (after it): never neither.
 * A re-run resumes: an `exported` month is exported again, a `verified` one verified again, then dropped.
 *
 * Runs on PostgreSQL only (it streams COPY over a postgres.js connection).
 */

export const archivedTables = ["events", "message_events"] as const;
export type ArchivedTable = (typeof archivedTables)[number];

export type ArchiveState = "exported" | "verified" | "dropped" | "restored";
export type ArchiveStep = "exported" | "verified" | "dropped";

export interface ArchiveRow {
  id: number;
  table_name: ArchivedTable;
  month: Date;
  partition_name: string;
  state: ArchiveState;
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
  content_sha256: string;
}

export interface RetentionOptions {
  /** Where archive files go (made if missing). */
  archiveDir: string;
  /** Months kept; older months are archived. At least 1: the current and the previous month are never touched. */
  retentionMonths: number;
  /** "Now", for the month arithmetic. @defaultValue new Date() */
  now?: Date;
  /** Only this month (`YYYY-MM`), even if it was restored by an import; still never the current or previous one. */
  month?: string;
  /** Say what would be archived; change nothing. */
  dryRun?: boolean;
  /** Rows read or written so far by the step running (export, verification), for a progress bar. */
  onProgress?: (event: { partition: string; step: "export" | "verify"; rows: number }) => void;
  /** Called after each step has committed (tests inject a crash here). */
  afterStep?: (step: ArchiveStep, partition: string) => void | Promise<void>;
}

export interface PlannedMonth {
  table: ArchivedTable;
  partition: string;
  month: string;
  /** What the run does or did: from which state it went on (`new` when it had no archive row). */
  from: ArchiveState | "new";
}

export interface RetentionResult {
  months: PlannedMonth[];
  rows: number;
  bytes: number;
}

const pad = (n: number) => String(n).padStart(2, "0");
export const monthLabel = (month: Date) => `${month.getUTCFullYear()}-${pad(month.getUTCMonth() + 1)}`;
export const partitionName = (table: ArchivedTable, month: Date) =>
  `${table}_${month.getUTCFullYear()}_${pad(month.getUTCMonth() + 1)}`;
/** Whether the month's partition is there (by name: attached or not). */
export async function partitionExists(
  sql: postgres.Sql | postgres.TransactionSql,
  partition: string,
): Promise<boolean> {
  const [row] = await sql<
    { exists: boolean }[]
  >`select to_regclass(${`"${partition}"`}) is not null as exists`;
  return row?.exists === true;
}

export const addMonths = (month: Date, n: number) =>
  new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + n, 1));
const startOfMonth = (date: Date) => new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));

/** `YYYY-MM` → the month's first instant (UTC). */
export function parseMonth(text: string): Date {
  const match = /^(\d{4})-(\d{2})$/.exec(text);
  const month = match ? Number(match[2]) : 0;
  if (!match || month < 1 || month > 12) throw new Error(`not a month (YYYY-MM): ${text}`);
  return new Date(Date.UTC(Number(match[1]), month - 1, 1));
}

/** The first month that is kept: everything before it is past retention. Never later than the previous month. */
export function retentionCutoff(now: Date, retentionMonths: number): Date {
  return addMonths(startOfMonth(now), -Math.max(1, Math.floor(retentionMonths)));
}

/** The `_YYYY_MM` partitions of `table`, with their months. */
async function monthlyPartitions(
  sql: postgres.Sql,
  table: ArchivedTable,
): Promise<{ partition: string; month: Date }[]> {
  const rows = await sql<{ name: string }[]>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = ${table}::regclass order by c.relname`;
  const found: { partition: string; month: Date }[] = [];
  for (const { name } of rows) {
    const match = new RegExp(`^${table}_(\\d{4})_(\\d{2})$`).exec(name);
    if (match)
      found.push({ partition: name, month: new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1)) });
  }
  return found;
}

export async function archiveRow(
  sql: postgres.Sql,
  table: ArchivedTable,
  month: Date,
): Promise<ArchiveRow | undefined> {
  const [row] = await sql<ArchiveRow[]>`
    select id::int, table_name, month, partition_name, state, path, rows::float8 as rows, bytes::float8 as bytes,
      sha256, content_sha256
    from archives where table_name = ${table} and month = ${month}`;
  return row;
}

export class RetentionError extends Error {}

/** Archive, verify and drop one month of one table, resuming from its archive row's state. */
async function archiveMonth(
  sql: postgres.Sql,
  table: ArchivedTable,
  month: Date,
  options: RetentionOptions,
): Promise<{ rows: number; bytes: number }> {
  const partition = partitionName(table, month);
  let row = await archiveRow(sql, table, month);
  if (row?.state === "dropped") return { rows: 0, bytes: 0 };

  if (row?.state !== "verified") {
    const facts = await exportPartition(sql, table, partition, options.archiveDir, (rows) =>
      options.onProgress?.({ partition, step: "export", rows }),
    );
    [row] = await sql<ArchiveRow[]>`
      insert into archives (table_name, month, partition_name, state, path, format, rows, bytes, sha256, content_sha256)
      values (${table}, ${month}, ${partition}, 'exported', ${facts.path}, 'copy-text+gzip', ${facts.rows},
        ${facts.bytes}, ${facts.sha256}, ${facts.contentSha256})
      on conflict (table_name, month) do update set state = 'exported', partition_name = excluded.partition_name,
        path = excluded.path, format = excluded.format, rows = excluded.rows, bytes = excluded.bytes,
        sha256 = excluded.sha256, content_sha256 = excluded.content_sha256, verified_at = null, dropped_at = null,
        updated_at = now()
      where archives.state <> 'dropped'
      returning id::int, table_name, month, partition_name, state, path, rows::float8 as rows, bytes::float8 as bytes,
        sha256, content_sha256`;
    if (!row) throw new RetentionError(`${partition}: archived and dropped by another run meanwhile`);
    await options.afterStep?.("exported", partition);
  }

  // Read the archive back, whether just written or verified by an earlier run (the file may have gone since).
  const read = await readArchiveFile(row.path, (rows) =>
    options.onProgress?.({ partition, step: "verify", rows }),
  ).catch((error: unknown) => {
    throw new RetentionError(`${partition}: cannot read its archive ${row!.path} back: ${String(error)}`);
  });
  if (read.rows !== row.rows || read.sha256 !== row.sha256 || read.contentSha256 !== row.content_sha256) {
    // A bad file: back to `exported`, so the next run writes it again (the partition is untouched).
    await sql`update archives set state = 'exported', updated_at = now() where id = ${row.id} and state <> 'dropped'`;
    throw new RetentionError(
      `${partition}: its archive does not read back as written (rows ${read.rows}/${row.rows}, sha256 ${read.sha256}/${row.sha256}); the partition is kept`,
    );
  }
  if (row.state !== "verified") {
    await sql`update archives set state = 'verified', verified_at = now(), updated_at = now() where id = ${row.id}`;
    await options.afterStep?.("verified", partition);
  }

  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('herald_partitions'))`;
    const [current] = await tx<
      { state: ArchiveState }[]
    >`select state from archives where id = ${row!.id} for update`;
    if (current?.state !== "verified")
      throw new RetentionError(`${partition}: no longer verified (${current?.state})`);
    if (await partitionExists(tx, partition)) {
      await tx.unsafe(`alter table "${table}" detach partition "${partition}"`);
      const [count] = await tx<{ n: number }[]>`select count(*)::float8 as n from ${tx(partition)}`;
      if (count?.n !== row!.rows) {
        // Rows written to the month since it was exported: export it again next time.
        await tx`update archives set state = 'exported', updated_at = now() where id = ${row!.id}`;
        throw new RetentionError(
          `${partition}: holds ${count?.n} rows, its archive ${row!.rows}; written since the export: run again`,
        );
      }
      if (table === "events") {
        const [uncounted] = await tx<{ n: number }[]>`
          select count(*)::float8 as n from ${tx(partition)} e, event_rollup_checkpoint c
          where (e.transaction_id, e.position) > (c.transaction_id, c.position)`;
        if ((uncounted?.n ?? 0) > 0) {
          throw new RetentionError(
            `${partition}: ${uncounted?.n} of its events are not counted in the rollups yet; run again when the projection has caught up`,
          );
        }
      }
      await tx.unsafe(`drop table "${partition}"`);
    }
    await tx`update archives set state = 'dropped', dropped_at = now(), updated_at = now() where id = ${row!.id}`;
  });
  await options.afterStep?.("dropped", partition);
  return { rows: row.rows, bytes: row.bytes };
}

/** The months a run would archive, per table, with the state each resumes from. */
export async function planRetention(sql: postgres.Sql, options: RetentionOptions): Promise<PlannedMonth[]> {
  const cutoff = retentionCutoff(options.now ?? new Date(), options.retentionMonths);
  const only = options.month === undefined ? undefined : parseMonth(options.month);
  if (only && only >= retentionCutoff(options.now ?? new Date(), 1)) {
    throw new RetentionError(`${options.month}: the current and the previous month are never archived`);
  }
  if (only && only >= cutoff)
    throw new RetentionError(`${options.month}: within retention (${options.retentionMonths} months)`);
  const planned: PlannedMonth[] = [];
  for (const table of archivedTables) {
    const states = new Map<number, ArchiveState>();
    for (const r of await sql<{ month: Date; state: ArchiveState }[]>`
      select month, state from archives where table_name = ${table}`)
      states.set(r.month.getTime(), r.state);
    const months = new Map<number, string>();
    for (const p of await monthlyPartitions(sql, table)) months.set(p.month.getTime(), p.partition);
    // Months whose export or verification a crash interrupted; their partition is still there.
    for (const [time, state] of states) {
      if ((state === "exported" || state === "verified") && !months.has(time)) {
        months.set(time, partitionName(table, new Date(time)));
      }
    }
    for (const [time, partition] of [...months].sort((a, b) => a[0] - b[0])) {
      const month = new Date(time);
      if (month >= cutoff) continue;
      if (only && time !== only.getTime()) continue;
      const state = states.get(time);
      if (state === "dropped") continue;
      // A month put back by `herald import` stays until asked for by name.
      if (state === "restored" && !only) continue;
      planned.push({ table, partition, month: monthLabel(month), from: state ?? "new" });
    }
  }
  return planned;
}

/** Archive every month past retention (or `options.month`), each table in turn. */
export async function runRetention(sql: postgres.Sql, options: RetentionOptions): Promise<RetentionResult> {
  const months = await planRetention(sql, options);
  let rows = 0;
  let bytes = 0;
  if (options.dryRun) return { months, rows, bytes };
  for (const planned of months) {
    const done = await archiveMonth(sql, planned.table, parseMonth(planned.month), options);
    rows += done.rows;
    bytes += done.bytes;
  }
  return { months, rows, bytes };
}
