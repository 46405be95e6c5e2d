import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type postgres from "postgres";
import {
  type ArchivedTable,
  addMonths,
  archiveRow,
  monthLabel,
  partitionExists,
  partitionName,
  RetentionError,
} from "./archive.js";
import { columnList, columnsOf, fileSha256, ownClient, RowMeter } from "./files.js";
import {
  addForeignKeys,
  attachMonthTable,
  buildIndexes,
  copyInLanes,
  dropMonthTable,
  type MonthTable,
  prepareMonthTable,
} from "./restore.js";

export interface ImportResult {
  table: ArchivedTable;
  partition: string;
  month: string;
  /** Rows the import added (0 when they were all there already). */
  inserted: number;
  rows: number;
}

export type ImportStep = "copied" | "indexed";

export interface ImportOptions {
  /** Rows read from the file so far, and how many it holds. */
  onProgress?: (rows: number, total: number) => void;
  /** Called as each step of a month made afresh is done, before it is attached (tests inject a crash here). */
  afterStep?: (step: ImportStep, partition: string) => void | Promise<void>;
}

/** One archive being imported: its month's table and range, its archive row. */
interface ImportJob extends MonthTable {
  file: string;
  archiveId: number;
  rows: number;
  report: ((rows: number) => void) | undefined;
  afterStep: ImportOptions["afterStep"];
}

/**
 * Put an archive's rows back as its partition: same rows, same ids. The file must be the one its archive
 * row records (same SHA-256). Idempotent: rows already there are kept as they are and not added twice. A
 * month whose partition is gone is made afresh (filled and indexed beside the parent, then attached: no
 * trigger fires; see `restore.ts`); one whose partition exists again (a late write made it) gets the
 * archive's rows that it lacks. One import of an archive runs at a time.
 */
export async function importArchive(
  sql: postgres.Sql,
  file: string,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const { onProgress, afterStep } = options;
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
  const job: ImportJob = {
    table,
    partition,
    columns,
    from: month.toISOString(),
    to: addMonths(month, 1).toISOString(),
    file,
    archiveId: row.id,
    rows: row.rows,
    report: onProgress && ((rows: number) => onProgress(rows, row.rows)),
    afterStep,
  };
  // Connections of its own: one holds this archive's import lock, two fill and index a month at once.
  const own = ownClient(sql, 3);
  try {
    const lock = await own.reserve();
    const [held] = await lock<{ held: boolean }[]>`
      select pg_try_advisory_lock(hashtext('herald_import'), ${row.id}) as held`;
    if (!held?.held) throw new RetentionError(`${file}: an import of this archive is already running`);
    const inserted = (await partitionExists(own, partition))
      ? await mergeInto(own, job, path)
      : await restore(own, job, path);
    lock.release();
    return { table, partition, month: monthLabel(month), inserted, rows: row.rows };
  } finally {
    await own.end({ timeout: 0 });
  }
}

/**
 * The month's partition is gone: rebuild it beside the parent (`restore.ts`) and attach it, unless a late write
 * made the partition again meanwhile, which then gets the rows it lacks.
 */
async function restore(sql: postgres.Sql, job: ImportJob, path: string): Promise<number> {
  const target = await prepareMonthTable(sql, job);
  try {
    let copied = 0;
    await pipeline(createReadStream(path), createGunzip({ chunkSize: 1 << 16 }), async (rows) => {
      copied = await copyInLanes(sql, `copy ${target} (${job.columns}) from stdin`, rows, job.report);
    });
    expectRows(job, copied);
    await job.afterStep?.("copied", job.partition);
    await buildIndexes(sql, job.table, target);
    await addForeignKeys(sql, job.table, target);
    await job.afterStep?.("indexed", job.partition);
    return await sql.begin(async (tx) => {
      await lockArchive(tx, job);
      if (await partitionExists(tx, job.partition)) {
        const added = await tx.unsafe(
          `insert into "${job.partition}" (${job.columns}) overriding system value select ${job.columns} from ${target} on conflict do nothing`,
        );
        await markRestored(tx, job);
        return added.count;
      }
      await attachMonthTable(tx, job, target);
      await markRestored(tx, job);
      return copied;
    });
  } finally {
    // Gone already once attached (moved to the parent's schema). Best effort after a failure, whose error is
    // the one to tell: the next import of the month drops a table left there.
    await dropMonthTable(sql, target).catch(() => {});
  }
}

/** The partition is there (a late write made it again): add the archive's rows it lacks, in one transaction. */
async function mergeInto(sql: postgres.Sql, job: ImportJob, path: string): Promise<number> {
  return sql.begin(async (tx) => {
    await lockArchive(tx, job);
    const staging = `herald_import_${process.pid}`;
    await tx.unsafe(`create temporary table "${staging}" (like "${job.table}") on commit drop`);
    const sink = await tx.unsafe(`copy "${staging}" (${job.columns}) from stdin`).writable();
    const meter = new RowMeter(job.report, false);
    await pipeline(createReadStream(path), createGunzip(), meter, sink);
    expectRows(job, meter.rows);
    const result = await tx.unsafe(
      `insert into "${job.partition}" (${job.columns}) overriding system value select ${job.columns} from "${staging}" on conflict do nothing`,
    );
    await markRestored(tx, job);
    return result.count;
  });
}

/** Partitions are made and attached one caller at a time; the archive row is held until the import commits. */
async function lockArchive(tx: postgres.TransactionSql, job: ImportJob): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtext('herald_partitions'))`;
  await tx`select id from archives where id = ${job.archiveId} for update`;
}

async function markRestored(tx: postgres.TransactionSql, job: ImportJob): Promise<void> {
  await tx`update archives set state = 'restored', restored_at = now(), updated_at = now()
    where id = ${job.archiveId} and state = 'dropped'`;
}

function expectRows(job: ImportJob, rows: number): void {
  if (rows !== job.rows) {
    throw new RetentionError(
      `${job.file}: holds ${rows} rows, its archive row ${job.rows}; nothing imported`,
    );
  }
}
