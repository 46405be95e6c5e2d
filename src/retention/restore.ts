import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import type postgres from "postgres";
import { quoteIdent } from "./files.js";

/**
 * A month rebuilt beside its table, then attached: the fast path of `importArchive` when the partition is gone.
 *
 * The month's table is made in the schema `herald_import` under the partition's own name, filled by COPY over
 * two connections at once, and given the parent's indexes two at a time (each statement committing on its
 * own) and its foreign keys, checked there. Built there, each index gets the very name PostgreSQL gives a
 * partition's index, and the table and its indexes move into the parent's schema together as the month is
 * attached. ATTACH PARTITION then finds every index made, every foreign key checked, and the range implied by
 * a constraint the rows were copied under, so it neither builds nor scans: on two cores a month imports ~1.4×
 * as fast as COPY into a table that ATTACH indexes one index at a time (see docs/benchmarks.md).
 *
 * Nothing is visible until the attach commits. A crash before it leaves only the table in `herald_import`,
 * which the next import of that month drops and makes again.
 */

const importSchema = "herald_import";

/** Connections filling the table, and building its indexes. */
const lanes = 2;
/** Memory of one index build (each lane's sort): a month of a million events sorts in ~100 MB. */
const indexMemory = "256MB";
/** The attach waits this long at most for its locks. */
const attachLockTimeout = "60s";
const rangeCheck = "herald_import_range";

export interface MonthTable {
  table: string;
  partition: string;
  from: string;
  to: string;
  /** The COPY column list. */
  columns: string;
}

/** Make (again) the month's table in `herald_import`, shaped like the parent, its range checked row by row. */
export async function prepareMonthTable(sql: postgres.Sql, month: MonthTable): Promise<string> {
  const key = await partitionKey(sql, month.table);
  // Two imports of different months may both make the schema: the loser's error means it is there.
  await sql.unsafe(`create schema if not exists ${quoteIdent(importSchema)}`).catch(async (error) => {
    const [made] = await sql`select to_regnamespace(${importSchema}) is not null as made`;
    if (!made?.made) throw error;
  });
  const target = `${quoteIdent(importSchema)}.${quoteIdent(month.partition)}`;
  await sql.unsafe(`drop table if exists ${target}`);
  await sql.unsafe(
    `create table ${target} (like ${quoteIdent(month.table)} including defaults including constraints including storage including compression,
      constraint ${rangeCheck} check (${quoteIdent(key)} >= '${month.from}' and ${quoteIdent(key)} < '${month.to}'))`,
  );
  return target;
}

/**
 * Send COPY text rows to `lanes` COPY statements at once, whole lines each, and wait for all to commit. Returns
 * the rows sent (one per newline: values never hold a raw newline), reported as they go every 10,000.
 */
export async function copyInLanes(
  sql: postgres.Sql,
  statement: string,
  source: AsyncIterable<Buffer>,
  report?: (rows: number) => void,
): Promise<number> {
  const sinks: Writable[] = await Promise.all(
    Array.from({ length: lanes }, () => sql.unsafe(statement).writable()),
  );
  let failure: unknown;
  let rows = 0;
  // Wakes the writer waiting for room: the first lane to drain, or a failure.
  let wake: (() => void) | undefined;
  const woken = () => {
    wake?.();
    wake = undefined;
  };
  for (const sink of sinks) sink.on("drain", woken);
  const done = sinks.map((sink) =>
    finished(sink).catch((error) => {
      failure ??= error;
      for (const other of sinks) other.destroy();
      woken();
      throw error;
    }),
  );
  try {
    let next = 0;
    let reported = 0;
    // The unfinished line at the end of the last chunk: it goes first, to the lane that takes the rest of it.
    let carry: Buffer[] = [];
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (failure) break;
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) rows++;
      if (report && rows - reported >= 10_000) {
        reported = rows;
        report(rows);
      }
      const end = chunk.lastIndexOf(10) + 1;
      if (end === 0) {
        carry.push(chunk);
        continue;
      }
      // The next lane in turn, unless it is full and another is not; when all are full, the first to drain.
      let sink =
        sinks.find((s, i) => i >= next && !s.writableNeedDrain) ?? sinks.find((s) => !s.writableNeedDrain);
      while (!sink && !failure) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        sink = sinks.find((s) => !s.writableNeedDrain);
      }
      if (failure || !sink) break;
      next = (sinks.indexOf(sink) + 1) % sinks.length;
      for (const piece of carry) sink.write(piece);
      sink.write(end === chunk.length ? chunk : chunk.subarray(0, end));
      carry = end < chunk.length ? [chunk.subarray(end)] : [];
    }
    if (!failure) for (const piece of carry) sinks[next]!.write(piece);
    for (const sink of sinks) sink.end();
  } catch (error) {
    for (const sink of sinks) sink.destroy(error as Error);
    failure ??= error;
  }
  await Promise.allSettled(done);
  if (failure) throw failure;
  return rows;
}

/**
 * The parent's indexes as statements for `target`: each made without a name, so PostgreSQL names it as it
 * names a partition's; those behind a constraint (the primary key) as that constraint. Longest first: lanes
 * take the next statement as they come free, and the widest keys take longest to sort.
 */
async function indexStatements(sql: postgres.Sql, table: string, target: string): Promise<string[]> {
  const rows = await sql<{ definition: string; constraint: string | null }[]>`
    select pg_get_indexdef(i.indexrelid) as definition, pg_get_constraintdef(c.oid) as constraint
    from pg_index i
    left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = i.indrelid and c.contype in ('p', 'u', 'x')
    where i.indrelid = ${table}::regclass`;
  return rows
    .map(({ definition, constraint }) => {
      if (constraint) return `alter table ${target} add ${constraint}`;
      const shape = /^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ (USING .*)$/s.exec(definition);
      if (!shape) throw new Error(`index of ${table} not understood: ${definition}`);
      return `create ${shape[1] ?? ""}index on ${target} ${shape[2]}`;
    })
    .sort((a, b) => b.length - a.length);
}

/** Build the parent's indexes on the month's table, `lanes` at a time. */
export async function buildIndexes(sql: postgres.Sql, table: string, target: string): Promise<void> {
  const queue = await indexStatements(sql, table, target);
  let failure: unknown;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let statement = queue.shift(); statement && !failure; statement = queue.shift()) {
        try {
          await sql.begin(async (tx) => {
            // One lane per core: each sort on its own, in memory.
            await tx`select set_config('maintenance_work_mem', ${indexMemory}, true),
              set_config('max_parallel_maintenance_workers', '0', true)`;
            await tx.unsafe(statement);
          });
        } catch (error) {
          failure ??= error;
        }
      }
    }),
  );
  if (failure) throw failure;
}

/**
 * The parent's foreign keys (message_events' to outbound_messages) on the month's table, under their own names,
 * added unchecked and then validated, which holds no lock that a writer of the referenced table waits for.
 * ATTACH then takes each as the partition's copy of the parent's and checks no row again.
 */
export async function addForeignKeys(sql: postgres.Sql, table: string, target: string): Promise<void> {
  const keys = await sql<{ name: string; definition: string }[]>`
    select conname as name, pg_get_constraintdef(oid) as definition from pg_constraint
    where conrelid = ${table}::regclass and contype = 'f' and conparentid = 0`;
  for (const { name, definition } of keys) {
    await sql.unsafe(`alter table ${target} add constraint ${quoteIdent(name)} ${definition} not valid`);
    await sql.unsafe(`alter table ${target} validate constraint ${quoteIdent(name)}`);
  }
}

/**
 * Attach the month's table as the partition (in the caller's transaction, which holds the partitions lock and
 * has checked that no partition of that month was made meanwhile).
 */
export async function attachMonthTable(tx: postgres.TransactionSql, month: MonthTable, target: string) {
  const [parent] = await tx<{ schema: string }[]>`
    select relnamespace::regnamespace::text as schema from pg_class where oid = ${month.table}::regclass`;
  await tx`select set_config('lock_timeout', ${attachLockTimeout}, true)`;
  await tx.unsafe(`alter table ${target} set schema ${parent!.schema}`);
  await tx.unsafe(
    `alter table ${quoteIdent(month.table)} attach partition ${quoteIdent(month.partition)} for values from ('${month.from}') to ('${month.to}')`,
  );
  await tx.unsafe(`alter table ${quoteIdent(month.partition)} drop constraint ${rangeCheck}`);
}

export async function dropMonthTable(sql: postgres.Sql, target: string): Promise<void> {
  await sql.unsafe(`drop table if exists ${target}`);
}

async function partitionKey(sql: postgres.Sql, table: string): Promise<string> {
  const [row] = await sql<{ key: string }[]>`select pg_get_partkeydef(${table}::regclass) as key`;
  const column = /^RANGE \((\w+)\)$/.exec(row?.key ?? "")?.[1];
  if (!column) throw new Error(`${table} is not partitioned by a range of one column (${row?.key})`);
  return column;
}
