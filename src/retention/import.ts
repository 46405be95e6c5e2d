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
  partitionName,
  RetentionError,
} from "./archive.js";
import { columnList, columnsOf, fileSha256, RowMeter } from "./files.js";

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
