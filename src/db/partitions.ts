import { sql } from "drizzle-orm";
import { type Executor, query } from "./client.js";
import { errorCode } from "./errors.js";

/**
 * Monthly partitions of `events` and `message_events`. Writers call `ensurePartitions` with the times of
 * the rows they are about to insert; months already known to exist cost nothing, others are created in the
 * caller's transaction (rare: events from an old or a future month). Only months seen in the catalog are
 * cached, never ones a transaction created (it might still roll back). The cache is per process and assumes
 * one database; `isMissingPartition` errors reset it, so a retry after a dropped partition succeeds.
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

export async function ensurePartitions(executor: Executor, table: PartitionedTable, dates: Iterable<Date>) {
  const wanted = new Map<string, Date>();
  for (const date of dates) wanted.set(monthKey(date), date);
  let months = known.get(table);
  if (months && [...wanted.keys()].every((m) => months!.has(m))) return;
  months = await loadKnown(executor, table);
  for (const [month, date] of wanted) {
    if (months.has(month)) continue;
    await executor.execute(
      sql`select herald_ensure_partitions(${table}, ${date.toISOString()}::timestamptz, 1)`,
    );
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
