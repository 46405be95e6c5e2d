import { sql } from "drizzle-orm";
import { type Db, type Executor, query } from "./client.js";
import { errorCode } from "./errors.js";

/**
 * The months made ahead, and the list of partitions (`herald partitions list`). Every range-partitioned table
 * of Herald's schema is partitioned by month (`events`, `message_events` today), each month a table named
 * `<table>_YYYY_MM` made by `herald_ensure_partitions` (migrations 0002, 0018).
 *
 * Made ahead, a month is never made by a writer: `ensureMonthsAhead` makes each missing month in a short
 * transaction of its own on the root handle, holding nothing else (the lock order of db/partitions.ts). That
 * transaction waits at most `lockTimeoutMs` for a lock — the creators' advisory lock, or, while attaching,
 * SHARE ROW EXCLUSIVE on `outbound_messages`, which waits for that table's writers in progress and, queued,
 * holds up new ones. Past it the month is given up and tried again a moment later, so writers are never held
 * up longer than that, and a writer that makes a month inside its own transaction (the library's path: it
 * holds its locks and waits for the advisory lock this holds) is not deadlocked by the upkeep: the upkeep's
 * shorter wait ends first. Several processes may run it at once: creators take turns on the advisory lock and
 * a month already there counts as made.
 */

/** A range-partitioned table of the schema: by month, as Herald partitions. */
export async function monthlyPartitionedTables(executor: Executor): Promise<string[]> {
  const rows = await query<{ name: string }>(
    executor,
    sql`select c.relname as name from pg_partitioned_table pt join pg_class c on c.oid = pt.partrelid
        where pt.partstrat = 'r' and c.relnamespace = current_schema()::regnamespace order by c.relname`,
  );
  return rows.map((r) => r.name);
}

/** `YYYY_MM` of a date (UTC): a partition's suffix. */
export const partitionMonth = (date: Date) =>
  `${date.getUTCFullYear()}_${String(date.getUTCMonth() + 1).padStart(2, "0")}`;

/** The first instant (UTC) of the month `offset` months after `date`'s. */
export const monthStart = (date: Date, offset = 0) =>
  new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + offset, 1));

export interface MonthsAheadOptions {
  /** Months after the current one to have (HERALD_PARTITIONS_AHEAD). The current and previous are too. */
  months: number;
  /** @defaultValue the current time */
  now?: Date;
  /** Longest lock wait of each month's transaction. @defaultValue 500 */
  lockTimeoutMs?: number;
  /** Attempts per month when a lock wait is given up or a deadlock broken. @defaultValue 5 */
  attempts?: number;
  /** Told after each table: what it made there, and which months it had already. */
  onTable?: (done: TableMonths) => void;
}

export interface TableMonths {
  table: string;
  /** Partitions made by this call (`events_2026_09`). */
  made: string[];
  /** The months wanted (previous, current, and `months` ahead), as partition names. */
  wanted: string[];
}

const retryable = new Set(["55P03", "40P01"]); // lock_not_available (lock_timeout), deadlock_detected

/**
 * Make sure every monthly-partitioned table has partitions from the previous month to `months` after the
 * current one; each missing month in a transaction of its own (see above). Idempotent: returns what it made.
 */
export async function ensureMonthsAhead(db: Db, options: MonthsAheadOptions): Promise<TableMonths[]> {
  const now = options.now ?? new Date();
  const lockTimeoutMs = Math.max(1, Math.round(options.lockTimeoutMs ?? 500));
  const attempts = options.attempts ?? 5;
  const result: TableMonths[] = [];
  for (const table of await monthlyPartitionedTables(db)) {
    const existing = new Set(await partitionNames(db, table));
    const wanted = Array.from({ length: options.months + 2 }, (_, i) => monthStart(now, i - 1));
    const made: string[] = [];
    for (const month of wanted) {
      const name = `${table}_${partitionMonth(month)}`;
      if (existing.has(name)) continue;
      for (let attempt = 1; ; attempt++) {
        try {
          // The creators' advisory lock first (herald_ensure_partitions takes it again, re-entrant), so the
          // month is found missing by the caller that makes it: each partition is reported made once.
          const making = await db.transaction(async (tx) => {
            await tx.execute(sql.raw(`set local lock_timeout = ${lockTimeoutMs}`));
            await tx.execute(sql`select pg_advisory_xact_lock(hashtext('herald_partitions'))`);
            const missing = await query<{ missing: boolean }>(
              tx,
              sql`select to_regclass(${name}) is null as missing`,
            );
            if (!missing[0]?.missing) return false;
            await tx.execute(
              sql`select herald_ensure_partitions(${table}, ${month.toISOString()}::timestamptz, 1)`,
            );
            return true;
          });
          if (making) made.push(name);
          break;
        } catch (error) {
          if (attempt >= attempts || !retryable.has(errorCode(error) ?? "")) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.random() * 100));
        }
      }
    }
    const done = { table, made, wanted: wanted.map((m) => `${table}_${partitionMonth(m)}`) };
    options.onTable?.(done);
    result.push(done);
  }
  return result;
}

async function partitionNames(executor: Executor, table: string): Promise<string[]> {
  const rows = await query<{ name: string }>(
    executor,
    sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = to_regclass(${table})`,
  );
  return rows.map((r) => r.name);
}

export interface PartitionInfo {
  table: string;
  /** The partition's name; for a month archived and dropped, the name it had. */
  partition: string;
  /** Its range, [from, to) in UTC; undefined when the name is not `<table>_YYYY_MM`. */
  from: Date | undefined;
  to: Date | undefined;
  /** PostgreSQL's estimate (`pg_class.reltuples`, as of the last ANALYZE or VACUUM); null: never analyzed. */
  rows: number | null;
  /** Exact count, when asked for (`exact`), or the archive's count for a dropped month. */
  exactRows?: number;
  /** On disk with its indexes and TOAST; null when the partition was dropped. */
  bytes: number | null;
  /** The month's row of `archives` (its state: exported, verified, dropped, restored), or undefined. */
  archived: string | undefined;
}

/** A partition's month from its name (`events_2026_09` → September 2026), if it has the usual form. */
function monthOf(table: string, partition: string): Date | undefined {
  const m = /^(\d{4})_(\d{2})$/.exec(partition.slice(table.length + 1));
  return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)) : undefined;
}

/**
 * Every partition of the monthly-partitioned tables, oldest first per table, with months archived and
 * dropped (rows of `archives` in state `dropped` whose partition is gone). `archives` is read only if it
 * exists (retention's table, src/retention/). `exact` counts each partition's rows (a scan of each).
 */
export async function listPartitions(
  executor: Executor,
  { exact = false }: { exact?: boolean } = {},
): Promise<PartitionInfo[]> {
  const rows = await query<{
    table: string;
    partition: string;
    rows: number | string;
    bytes: number | string;
  }>(
    executor,
    sql`select p.relname as "table", c.relname as "partition", c.reltuples as rows,
          pg_total_relation_size(c.oid) as bytes
        from pg_partitioned_table pt
        join pg_class p on p.oid = pt.partrelid
        join pg_inherits i on i.inhparent = p.oid
        join pg_class c on c.oid = i.inhrelid
        where pt.partstrat = 'r' and p.relnamespace = current_schema()::regnamespace
        order by p.relname, c.relname`,
  );
  const archives = new Map<string, { state: string; rows: number; table: string }>();
  const found = await query<{ found: boolean }>(
    executor,
    sql`select to_regclass('archives') is not null as found`,
  );
  if (found[0]?.found) {
    const archived = await query<{ table: string; partition: string; state: string; rows: number | string }>(
      executor,
      sql`select table_name as "table", partition_name as "partition", state, rows from archives`,
    );
    for (const a of archived)
      archives.set(a.partition, { state: a.state, rows: Number(a.rows), table: a.table });
  }
  const list: PartitionInfo[] = [];
  for (const r of rows) {
    const from = monthOf(r.table, r.partition);
    const estimate = Number(r.rows);
    const info: PartitionInfo = {
      table: r.table,
      partition: r.partition,
      from,
      to: from && monthStart(from, 1),
      rows: estimate < 0 ? null : Math.round(estimate),
      bytes: Number(r.bytes),
      archived: archives.get(r.partition)?.state,
    };
    if (exact) {
      const counted = await query<{ n: number | string }>(
        executor,
        sql`select count(*) as n from ${sql.identifier(r.partition)}`,
      );
      info.exactRows = Number(counted[0]?.n ?? 0);
    }
    list.push(info);
  }
  const present = new Set(rows.map((r) => r.partition));
  for (const [partition, a] of archives) {
    if (present.has(partition)) continue;
    const from = monthOf(a.table, partition);
    list.push({
      table: a.table,
      partition,
      from,
      to: from && monthStart(from, 1),
      rows: null,
      exactRows: a.rows,
      bytes: null,
      archived: a.state,
    });
  }
  return list.sort((a, b) =>
    a.table === b.table ? a.partition.localeCompare(b.partition) : a.table.localeCompare(b.table),
  );
}
