import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { loadConfig } from "../config.js";
import type { Db } from "../db/client.js";
import { ensureMonthsAhead, listPartitions, type PartitionInfo } from "../db/partitionUpkeep.js";

type WithDatabase = <T>(work: (db: Db) => Promise<T>) => Promise<T>;

const months = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 120)
    throw new InvalidArgumentError("must be a whole number 0–120");
  return n;
};

/** Bytes as `8.0 kB`, `1.2 MB` (powers of 1024, as pg_size_pretty). */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const day = (date: Date | undefined) => date?.toISOString().slice(0, 10) ?? "?";

/** The rows of `herald partitions list`, header first. */
export function partitionTable(list: readonly PartitionInfo[]): string[][] {
  return [
    ["partition", "range", "rows", "size", "archived"],
    ...list.map((p) => [
      p.partition,
      p.from ? `${day(p.from)} .. ${day(p.to)}` : "?",
      p.exactRows !== undefined ? String(p.exactRows) : p.rows === null ? "?" : `~${p.rows}`,
      p.bytes === null ? "dropped" : formatBytes(p.bytes),
      p.archived ?? "no",
    ]),
  ];
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function formatTable(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const right = new Set([2, 3]);
  return rows
    .map((r) =>
      r
        .map((cell, i) => (right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * `herald partitions list` and `herald partitions ensure`. Returns the `partitions` command, so other
 * commands of the group (`archive`) are added to it: `registerPartitionCommands(program, withDatabase)
 * .command("archive")…`.
 */
export function registerPartitionCommands(program: Command, withDatabase: WithDatabase): Command {
  const partitions = program
    .command("partitions")
    .description("the monthly partitions of events, message_events and the other partitioned tables");
  partitions
    .command("list")
    .description(
      "each partition: range (UTC), rows (estimate from pg_class.reltuples, ~; ? = never analyzed), size, archived",
    )
    .option("--exact", "count each partition's rows instead of estimating (reads them all)")
    .action(async (options: { exact?: boolean }) => {
      const list = await withDatabase((db) => listPartitions(db, { exact: options.exact === true }));
      process.stdout.write(`${formatTable(partitionTable(list))}\n`);
    });
  partitions
    .command("ensure")
    .description("make the partitions from the previous month to N months ahead now, for every table")
    .option("--months <n>", "months after the current one (default: HERALD_PARTITIONS_AHEAD)", months)
    .action(async (options: { months?: number }) => {
      const ahead = options.months ?? loadConfig().partitionsAhead;
      const done = await withDatabase((db) =>
        ensureMonthsAhead(db, {
          months: ahead,
          onTable: ({ table, made, wanted }) =>
            process.stdout.write(
              `${table}: ${wanted.length - made.length}/${wanted.length} months were there` +
                (made.length > 0 ? `, made ${made.join(", ")}\n` : "\n"),
            ),
        }),
      );
      const made = done.reduce((n, t) => n + t.made.length, 0);
      process.stdout.write(
        `partitions ensured ${ahead} month${ahead === 1 ? "" : "s"} ahead: ${made} made, ${done.length} tables\n`,
      );
    });
  return partitions;
}
