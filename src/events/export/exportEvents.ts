import { createHash } from "node:crypto";
import type { Writable } from "node:stream";
import type { Executor } from "../../db/client.js";
import type { EventFilter } from "../filter.js";
import type { ReadPosition } from "../query.js";
import { type EventTotals, eventTotals } from "../totals.js";
import { type ExportFormat, exportEncoder } from "./encoder.js";
import { type BatchRow, type ExportBatch, readExportRows, readExportText } from "./read.js";

/**
 * Runs one read of an export. Each batch is read by its own call: one statement, or a short transaction
 * (a tenant's, for row-level security), never one transaction held open across the whole export (on PGlite
 * that would hold its only connection; on PostgreSQL, a snapshot pinned for minutes).
 */
export type BatchReader = <T>(read: (executor: Executor) => Promise<T>) => Promise<T>;

export interface ExportOptions {
  /**
   * Events read per statement. Larger batches mean fewer statements and more memory held per batch (the CLI
   * at 1M events peaks near 150 MB RSS with 2000). @defaultValue 2000
   */
  batchRows?: number;
  /** Batches read ahead of the one being written, each on a connection of its own. @defaultValue 2 */
  readAhead?: number;
  /**
   * The filter's totals, counted by the caller just before (so a total it announced matches the rows
   * exactly): the export reads in their snapshot, over their time range. Absent, they are counted first.
   */
  totals?: EventTotals | undefined;
  /** Called after each batch is handed to the sink, with the rows so far. */
  onProgress?: (rows: number) => void;
}

export interface ExportResult {
  rows: number;
  bytes: number;
  /** sha256 of every byte written, hex. */
  sha256: string;
}

/** The sink was closed or failed before the export ended (a client that went away). */
export class ExportAbortedError extends Error {
  override name = "ExportAbortedError";
}

/** Write `chunk`, waiting for the sink to drain when its buffer is full (backpressure). */
function write(sink: Writable, chunk: Buffer): Promise<void> | undefined {
  if (sink.destroyed || sink.writableEnded) throw new ExportAbortedError("the output was closed");
  if (sink.write(chunk)) return undefined;
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      sink.off("drain", onDrain);
      sink.off("close", onClose);
      sink.off("error", onError);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new ExportAbortedError("the output was closed"));
    const onError = (error: Error) => done(error);
    sink.on("drain", onDrain);
    sink.on("close", onClose);
    sink.on("error", onError);
  });
}

/**
 * Where the next batch comes from: a window of time [start, end) and a position inside it. The export walks
 * the filter's time range window by window, each sized to hold about one batch: every statement then bounds
 * the time on both sides, so the planner reads a window through the (tenant, time) index whatever the range;
 * with only a lower bound it may choose to scan and sort the rest of a month for each batch.
 */
interface Cursor {
  start: number;
  end: number;
  after: ReadPosition | undefined;
}

/** A batch being read, and how many rows of its window came before it. */
interface Pending {
  cursor: Cursor;
  batch: Promise<ExportBatch<Buffer | BatchRow[]>>;
  rowsBefore: number;
}

/**
 * Stream every event matching `filter` into `sink` as one file of `format`, oldest first by (time, id), and
 * end the sink. **Exact**: every batch is read in the snapshot of the totals (see `readEvents`), so the file
 * holds every event committed before the export began exactly once, whatever writers do meanwhile, and as
 * many as the total counted. **Bounded memory**: a few batches are read ahead while one is encoded and
 * written, and the next waits for the sink to drain. **Deterministic**: the same range gives the same bytes.
 * Returns the rows, bytes and their sha256.
 *
 * `source` is an executor (each batch one statement on it) or a `BatchReader`. On failure the sink is left
 * open: the caller decides how to cut it short (an HTTP response is destroyed, never ended as if complete).
 */
export async function exportEvents(
  source: Executor | BatchReader,
  filter: EventFilter,
  format: ExportFormat,
  sink: Writable,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const { batchRows = 2000, readAhead = 2, onProgress } = options;
  const run: BatchReader = typeof source === "function" ? source : (read) => read(source);
  const totals = options.totals ?? (await run((executor) => eventTotals(executor, filter)));

  const encoder = exportEncoder(format);
  const hash = createHash("sha256");
  let bytes = 0;
  let rows = 0;
  const emit = async (chunk: Buffer | undefined) => {
    if (chunk === undefined || chunk.length === 0) return;
    hash.update(chunk);
    bytes += chunk.length;
    await write(sink, chunk);
  };

  // The events lie between the first and the last one's time (ms, floored): no window goes beyond.
  const { start: first, end: last } = totals.timeRange;
  const rangeStart = Math.max(filter.start?.getTime() ?? -Infinity, first === null ? 0 : Date.parse(first));
  const rangeEnd = Math.min(filter.end?.getTime() ?? Infinity, last === null ? 0 : Date.parse(last) + 1);
  // Windows aim at most of a batch, so few need a second statement. First guess: the events spread evenly;
  // then each window is sized by what the last finished one held.
  const aim = batchRows * 0.8;
  let span = Math.max(1, Math.ceil(((rangeEnd - rangeStart) * aim) / Math.max(totals.total, 1)));
  let nextStart = totals.total === 0 ? rangeEnd : rangeStart;

  const read = (cursor: Cursor): Pending => {
    const filterOfWindow = { ...filter, start: new Date(cursor.start), end: new Date(cursor.end) };
    const { read: how } = encoder;
    const batch = run(
      (executor): Promise<ExportBatch<Buffer | BatchRow[]>> =>
        "text" in how
          ? readExportText(executor, filterOfWindow, totals.snapshot, cursor.after, batchRows, how.text)
          : readExportRows(executor, filterOfWindow, totals.snapshot, cursor.after, batchRows, how.rows),
    );
    // Awaited (and thrown) in its turn; until then a failure must not go unhandled.
    batch.catch(() => {});
    return { cursor, batch, rowsBefore: 0 };
  };
  /** The next window, or undefined past the range. */
  const nextWindow = (): Pending | undefined => {
    if (nextStart >= rangeEnd) return undefined;
    const cursor = { start: nextStart, end: Math.min(rangeEnd, nextStart + span), after: undefined };
    nextStart = cursor.end;
    return read(cursor);
  };

  // Reads in file order, `readAhead` of them in flight: the database works on the next windows (on other
  // connections) while this batch is encoded and written. A window that fills a batch is continued from its
  // last event before anything after it.
  const pending: Pending[] = [];
  const fill = () => {
    while (pending.length < readAhead) {
      const window = nextWindow();
      if (window === undefined) break;
      pending.push(window);
    }
  };
  await emit(encoder.start());
  fill();
  for (let head = pending.shift(); head !== undefined; head = pending.shift()) {
    const batch = await head.batch;
    const { keyset } = batch;
    if (keyset) {
      const [ts, id] = keyset.split(" ") as [string, string];
      const after = { snapshot: totals.snapshot, ts, id };
      const continued = read({ ...head.cursor, after });
      continued.rowsBefore = head.rowsBefore + batch.rows;
      pending.unshift(continued);
    } else {
      const held = head.rowsBefore + batch.rows;
      span = Math.max(1, Math.round(span * Math.min(4, Math.max(0.25, aim / Math.max(held, 1)))));
      fill();
    }
    rows += batch.rows;
    await emit(encoder.batch(batch.data));
    onProgress?.(rows);
  }
  await emit(encoder.end());
  await new Promise<void>((resolve, reject) => {
    sink.end((error?: Error | null) => (error ? reject(error) : resolve()));
  });
  return { rows, bytes, sha256: hash.digest("hex") };
}
