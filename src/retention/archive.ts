import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { type Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import postgres from "postgres";

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
const partitionName = (table: ArchivedTable, month: Date) =>
  `${table}_${month.getUTCFullYear()}_${pad(month.getUTCMonth() + 1)}`;
const addMonths = (month: Date, n: number) =>
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

/** The columns of `table` in order (the archive's columns, and COPY FROM's list on import). */
async function columnsOf(sql: postgres.Sql, table: string): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select attname as name from pg_attribute
    where attrelid = ${table}::regclass and attnum > 0 and not attisdropped order by attnum`;
  return rows.map((r) => r.name);
}

const columnList = (columns: string[]) => columns.map((c) => `"${c.replaceAll('"', '""')}"`).join(", ");

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

async function archiveRow(
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

/** Counts COPY text rows (one per newline: values never hold a raw newline) and hashes them as they pass. */
class RowMeter extends Transform {
  readonly hash = createHash("sha256");
  rows = 0;
  bytes = 0;
  private lastReport = 0;
  constructor(private readonly report?: (rows: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    let at = chunk.indexOf(10);
    while (at !== -1) {
      this.rows++;
      at = chunk.indexOf(10, at + 1);
    }
    if (this.report && this.rows - this.lastReport >= 10_000) {
      this.lastReport = this.rows;
      this.report(this.rows);
    }
    // postgres.js gives a chunk per row: passed on in batches, gzip and the file see few large writes.
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= 1 << 20) this.push(this.takeBatch());
    done();
  }
  override _flush(done: TransformCallback) {
    if (this.pendingBytes > 0) this.push(this.takeBatch());
    done();
  }
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private takeBatch(): Buffer {
    const batch = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return batch;
  }
}

/**
 * Run `copy … to stdout` on a connection of its own, closed when `consume` is done. postgres.js pauses the
 * socket of a COPY stream that is not read fast enough and resumes it when read again; paused on the last
 * chunk (always possible: several chunks and the end arrive in one read), it is never resumed, and the next
 * query on that connection would wait forever. A connection of its own is closed instead of reused.
 */
export async function copyOut<T>(
  sql: postgres.Sql,
  statement: string,
  consume: (source: Readable) => Promise<T>,
): Promise<T> {
  const own = postgres({ ...sql.options, max: 1, onnotice: () => {} } as unknown as postgres.Options<
    Record<string, never>
  >);
  try {
    return await consume(await own.unsafe(statement).readable());
  } finally {
    await own.end({ timeout: 0 });
  }
}

/** Hashes what passes through (the compressed file's bytes). */
class FileHash extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

interface FileFacts {
  rows: number;
  bytes: number;
  sha256: string;
  contentSha256: string;
}

/** Stream the partition out with COPY into `<dir>/<partition>.copy.gz`, durably (temporary name, fsync, rename). */
async function exportPartition(
  sql: postgres.Sql,
  table: ArchivedTable,
  partition: string,
  dir: string,
  report?: (rows: number) => void,
): Promise<FileFacts & { path: string }> {
  await mkdir(dir, { recursive: true });
  const path = resolve(join(dir, `${partition}.copy.gz`));
  const temporary = `${path}.${process.pid}.tmp`;
  const columns = await columnsOf(sql, table);
  const meter = new RowMeter(report);
  const fileHash = new FileHash();
  try {
    await copyOut(sql, `copy "${partition}" (${columnList(columns)}) to stdout`, (source) =>
      pipeline(source, meter, createGzip({ level: 1 }), fileHash, createWriteStream(temporary)),
    );
    const handle = await open(temporary, "r+");
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
    const directory = await open(dir, "r");
    await directory.sync().catch(() => {});
    await directory.close();
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return {
    path,
    rows: meter.rows,
    bytes: fileHash.bytes,
    sha256: fileHash.hash.digest("hex"),
    contentSha256: meter.hash.digest("hex"),
  };
}

/** Read an archive file back: its own SHA-256, and the count and SHA-256 of the rows it decompresses to. */
export async function readArchiveFile(path: string, report?: (rows: number) => void): Promise<FileFacts> {
  const fileHash = new FileHash();
  const meter = new RowMeter(report);
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  await pipeline(createReadStream(path), fileHash, createGunzip(), meter, sink);
  return {
    rows: meter.rows,
    bytes: fileHash.bytes,
    sha256: fileHash.hash.digest("hex"),
    contentSha256: meter.hash.digest("hex"),
  };
}

/** The SHA-256 of a file alone (import refuses a file whose checksum is not its archive row's). */
async function fileSha256(path: string): Promise<string> {
  const hash = new FileHash();
  await pipeline(createReadStream(path), hash, new Writable({ write: (_c, _e, done) => done() }));
  return hash.hash.digest("hex");
}

class RetentionError extends Error {}

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
    const [exists] = await tx<
      { exists: boolean }[]
    >`select to_regclass(${`"${partition}"`}) is not null as exists`;
    if (exists?.exists) {
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

export interface ImportResult {
  table: ArchivedTable;
  partition: string;
  month: string;
  /** Rows the import added (0 when they were all there already). */
  inserted: number;
  rows: number;
}

/**
 * Put an archive's rows back as its partition: same rows, same ids. The file must be the one its archive
 * row records (same SHA-256). Idempotent: rows already there are kept as they are and not added twice. A
 * month whose partition is gone is made afresh (COPY into a new table, then attached: no trigger fires);
 * one whose partition exists again (a late write made it) gets the archive's rows that it lacks.
 */
export async function importArchive(
  sql: postgres.Sql,
  file: string,
  /** Rows read from the file so far, and how many it holds. */
  onProgress?: (rows: number, total: number) => void,
): Promise<ImportResult> {
  const path = resolve(file);
  const match = /^(events|message_events)_(\d{4})_(\d{2})\.copy\.gz$/.exec(basename(path));
  if (!match) throw new RetentionError(`${file}: not a Herald archive (<table>_YYYY_MM.copy.gz)`);
  const table = match[1] as ArchivedTable;
  const month = new Date(Date.UTC(Number(match[2]), Number(match[3]) - 1, 1));
  const partition = partitionName(table, month);
  const row = await archiveRow(sql, table, month);
  if (!row) throw new RetentionError(`${file}: no archive of ${partition} is recorded in this database`);
  await stat(path);
  const sha256 = await fileSha256(path);
  if (sha256 !== row.sha256) {
    throw new RetentionError(`${file}: its SHA-256 ${sha256} is not the archive's ${row.sha256}; refused`);
  }
  const columns = columnList(await columnsOf(sql, table));
  const from = month.toISOString();
  const to = addMonths(month, 1).toISOString();
  const inserted = await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('herald_partitions'))`;
    await tx`select id from archives where id = ${row.id} for update`;
    // Attaching builds the parent's indexes on the new table: sorted in memory, with parallel workers.
    await tx`select set_config('maintenance_work_mem', '256MB', true), set_config('max_parallel_maintenance_workers', '4', true)`;
    const [exists] = await tx<
      { exists: boolean }[]
    >`select to_regclass(${`"${partition}"`}) is not null as exists`;
    const meter = new RowMeter(onProgress && ((rows) => onProgress(rows, row.rows)));
    let added: number;
    if (!exists?.exists) {
      await tx.unsafe(
        `create table "${partition}" (like "${table}" including defaults including constraints including storage including compression)`,
      );
      const sink = await tx.unsafe(`copy "${partition}" (${columns}) from stdin`).writable();
      await pipeline(createReadStream(path), createGunzip(), meter, sink);
      await tx.unsafe(
        `alter table "${table}" attach partition "${partition}" for values from ('${from}') to ('${to}')`,
      );
      added = meter.rows;
    } else {
      const staging = `herald_import_${process.pid}`;
      await tx.unsafe(`create temporary table "${staging}" (like "${table}") on commit drop`);
      const sink = await tx.unsafe(`copy "${staging}" (${columns}) from stdin`).writable();
      await pipeline(createReadStream(path), createGunzip(), meter, sink);
      const result = await tx.unsafe(
        `insert into "${partition}" (${columns}) overriding system value select ${columns} from "${staging}" on conflict do nothing`,
      );
      added = result.count;
    }
    if (meter.rows !== row.rows) {
      throw new RetentionError(
        `${file}: holds ${meter.rows} rows, its archive row ${row.rows}; nothing imported`,
      );
    }
    await tx`update archives set state = 'restored', restored_at = now(), updated_at = now()
      where id = ${row.id} and state = 'dropped'`;
    return added;
  });
  return { table, partition, month: monthLabel(month), inserted, rows: row.rows };
}

export { RetentionError };
