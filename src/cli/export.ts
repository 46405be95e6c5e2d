import { createWriteStream } from "node:fs";
import { PassThrough, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SingleBar } from "cli-progress";
import { type Command, InvalidArgumentError } from "commander";
import { rangeEnd, rangeStart } from "../api/ranges.js";
import type { Db } from "../db/client.js";
import { eventSources } from "../domain/vocabularies.js";
import { type ExportFormat, exportEvents, exportFormats } from "../events/export/index.js";
import type { EventFilter } from "../events/filter.js";
import { eventTotals } from "../events/totals.js";
import { eventTypePattern } from "../events/types.js";
import { boundHeapGrowth } from "./heap.js";

type WithDatabase = <T>(work: (db: Db) => Promise<T>) => Promise<T>;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const validDate = (value: string) => {
  if (!/^\d{4}-\d{2}-\d{2}([T ].+)?$/.test(value) || Number.isNaN(rangeStart(value).getTime()))
    throw new InvalidArgumentError("use a date (2026-10-01) or an ISO timestamp (2026-10-01T12:00:00Z)");
  return value;
};

const oneOf =
  <T extends string>(values: readonly T[]) =>
  (value: string): T => {
    if (!(values as readonly string[]).includes(value))
      throw new InvalidArgumentError(`use one of ${values.join(", ")}`);
    return value as T;
  };

const typePattern = (value: string) => {
  const base = value.endsWith(".*") ? value.slice(0, -2) : value;
  if (value !== "*" && !eventTypePattern.test(base))
    throw new InvalidArgumentError("use an event type (message.delivered) or a prefix (message.*)");
  return value;
};

/** This process's peak resident memory so far (getrusage's maxrss, the kernel's VmHWM), in MB. */
const peakRssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);

interface ExportCommandOptions {
  tenant: string;
  start: string;
  end: string;
  type?: string;
  source?: EventFilter["source"];
  format: ExportFormat;
  out?: string;
  batch?: number;
}

/**
 * `herald export`: a tenant's events of a time range as one file (NDJSON, CSV or Parquet), streamed to
 * `--out` or to stdout. The progress bar (rows, rows/s) and the closing checksum line go to stderr, always:
 * redrawn on a terminal, a line every 10 s otherwise, so stdout carries the file alone. The last line is
 * `sha256=… rows=… bytes=… seconds=… peak_rss_mb=…`.
 */
export function registerExportCommand(program: Command, withDatabase: WithDatabase) {
  program
    .command("export")
    .description(
      "export a tenant's events as NDJSON, CSV or Parquet (streamed; progress and sha256 on stderr)",
    )
    .requiredOption("--tenant <id>", "tenant id")
    .requiredOption("--start <date>", "from this date or time (inclusive)", validDate)
    .requiredOption(
      "--end <date>",
      "up to this date or time (exclusive; a date includes the whole day)",
      validDate,
    )
    .option("--type <pattern>", "only this event type, or a prefix (message.*)", typePattern)
    .option("--source <source>", `only this source (${eventSources.join(", ")})`, oneOf(eventSources))
    .option("--format <format>", `${exportFormats.join(", ")}`, oneOf(exportFormats), "ndjson")
    .option("--out <file>", "write to this file instead of stdout")
    .option("--batch <rows>", "events read per statement (default 2000)", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError("1 to 100000");
      return n;
    })
    .action(async (o: ExportCommandOptions) => {
      // An export allocates its whole size in short-lived text (measured at 1M events: 200 MB peak RSS with
      // V8's own growth, 160 MB with this); this process does nothing else.
      boundHeapGrowth(50);
      if (!uuid.test(o.tenant)) throw new Error("--tenant must be a tenant id (a UUID)");
      const start = rangeStart(o.start);
      const end = rangeEnd(o.end);
      if (start >= end) throw new Error("--start must be before --end");
      const filter: EventFilter = { tenantId: o.tenant, type: o.type, source: o.source, start, end };
      await withDatabase(async (db) => {
        // The system handle: every statement names the tenant (as the API's reads outside a transaction do),
        // so each batch is one statement, not a tenant transaction of three round trips.
        const totals = await eventTotals(db, filter);
        const bar = new SingleBar({
          format: "export [{bar}] {value}/{total} rows | {rate} rows/s | {duration_formatted}",
          hideCursor: true,
          stream: process.stderr,
          // Not a terminal (a log, a CI job): the same line every 10 s instead of redrawing.
          noTTYOutput: true,
          notTTYSchedule: 10_000,
        });
        const started = performance.now();
        const rate = (rows: number) =>
          Math.round(rows / Math.max((performance.now() - started) / 1000, 1e-3));
        const body = new PassThrough();
        const out: Writable = o.out ? createWriteStream(o.out) : process.stdout;
        bar.start(totals.total, 0, { rate: 0 });
        try {
          const [result] = await Promise.all([
            exportEvents(db, filter, o.format, body, {
              batchRows: o.batch,
              totals,
              onProgress: (rows) => bar.update(rows, { rate: rate(rows) }),
            }).catch((error: unknown) => {
              body.destroy(error instanceof Error ? error : new Error(String(error)));
              throw error;
            }),
            pipeline(body, out),
          ]);
          bar.update(result.rows, { rate: rate(result.rows) });
          bar.stop();
          const seconds = (performance.now() - started) / 1000;
          process.stderr.write(
            `sha256=${result.sha256} rows=${result.rows} bytes=${result.bytes} seconds=${seconds.toFixed(3)} peak_rss_mb=${peakRssMb()}\n`,
          );
        } finally {
          // Also on failure: the bar hides the cursor until it is stopped.
          bar.stop();
        }
      });
    });
}
