import { sql } from "drizzle-orm";
import { type Db, type Executor, query } from "./client.js";
import { errorCode } from "./errors.js";

/**
 * Monthly partitions of `events` and `message_events`. Migrations (`maintainPartitions`) and running workers
 * (`maintain_partitions`, HERALD_PARTITIONS_AHEAD: db/partitionUpkeep.ts) make the months around now ahead of
 * time; older or later months are made on demand, here.
 *
 * Making one takes strong locks: `herald_ensure_partitions` (migration 0018) attaches a new table, which takes
 * SHARE UPDATE EXCLUSIVE on the parent (no read or write waits for that) but also SHARE ROW EXCLUSIVE on
 * every table a foreign key of the parent references (`message_events` → `outbound_messages`), held until its
 * transaction ends. Made inside a writer's transaction, that lock would be held while the writer goes on and
 * waits for others — a message registration holds its orphan lock and waits to insert into
 * `outbound_messages`, while the writer waits for that orphan lock: a deadlock (40P01), which PostgreSQL
 * breaks by failing one side, a client's request among them. So Herald's own writers call
 * `preparePartitions` before they open their transaction: each missing month is made in a short transaction
 * of its own that holds nothing else, waits only for transactions already writing the referenced table, and
 * commits before the writer takes any lock. `ensurePartitions`, run by the writers inside their transaction,
 * then finds every month there; it still makes what is missing (a caller's own transaction through the
 * library, a delivery archived before its months were prepared, PGlite, whose one connection runs one
 * transaction at a time so nothing can race it).
 *
 * Months seen in the catalog, or made by `preparePartitions` (committed), are cached per process (assuming
 * one database), never ones a writer's transaction made (it might still roll back). A write refused for want
 * of a partition resets the cache (`forgetPartitionsOnError`), so a retry after a dropped partition succeeds.
 */

export type PartitionedTable = "events" | "message_events";

const known = new Map<PartitionedTable, Set<string>>();

const monthKey = (date: Date) =>
  `${date.getUTCFullYear()}_${String(date.getUTCMonth() + 1).padStart(2, "0")}`;

async function loadKnown(executor: Executor, table: PartitionedTable): Promise<Set<string>> {
  const rows = await query<{ name: string }>(
    executor,
    sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
        join pg_class p on p.oid = i.inhparent where p.relname = ${table}`,
  );
  const months = new Set(rows.map((r) => r.name.slice(table.length + 1)));
  known.set(table, months);
  return months;
}

/** The months of `dates` the cache does not know to exist, each with one of its dates. */
function unknownMonths(table: PartitionedTable, dates: Iterable<Date>): Map<string, Date> {
  const wanted = new Map<string, Date>();
  const months = known.get(table);
  for (const date of dates) {
    const month = monthKey(date);
    if (!months?.has(month)) wanted.set(month, date);
  }
  return wanted;
}

/** Make the missing months of `dates` in the executor's transaction; returns the months it made. */
async function makeMissing(
  executor: Executor,
  table: PartitionedTable,
  dates: Iterable<Date>,
): Promise<string[]> {
  const wanted = unknownMonths(table, dates);
  if (wanted.size === 0) return [];
  const months = await loadKnown(executor, table);
  const made: string[] = [];
  for (const [month, date] of wanted) {
    if (months.has(month)) continue;
    await executor.execute(
      sql`select herald_ensure_partitions(${table}, ${date.toISOString()}::timestamptz, 1)`,
    );
    made.push(month);
  }
  return made;
}

/** Make sure the months of `dates` have partitions of `table`, making missing ones in the caller's transaction. */
export async function ensurePartitions(
  executor: Executor,
  table: PartitionedTable,
  dates: Iterable<Date>,
): Promise<void> {
  await makeMissing(executor, table, dates);
}

/**
 * Make sure the months of `dates` have partitions of each table, each missing month in a transaction of its
 * own (see above). Call it before opening the transaction that writes the rows, never inside one on the same
 * database: on PGlite that transaction holds the only connection, and on PostgreSQL it would hold the locks
 * this avoids holding. Costs nothing when every month is known.
 */
export async function preparePartitions(
  db: Db,
  tables: readonly PartitionedTable[],
  dates: readonly Date[],
): Promise<void> {
  for (const table of tables) {
    // Each statement on the root database commits by itself: the months it made now exist for everyone.
    for (const month of await makeMissing(db, table, dates)) known.get(table)?.add(month);
  }
}

/** A write failed because no partition holds its time (SQLSTATE 23514 from partition routing). */
export function forgetPartitionsOnError(error: unknown): void {
  if (errorCode(error) === "23514") known.clear();
}

/** Forget what is cached (a process that switches databases, tests). */
export function resetPartitionCache() {
  known.clear();
}
