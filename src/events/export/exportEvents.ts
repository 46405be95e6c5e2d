import { createHash } from "node:crypto";
import type { Writable } from "node:stream";
import type { Executor } from "../../db/client.js";
import type { EventFilter } from "../filter.js";
import { type ReadPage, type ReadPosition, readEvents } from "../query.js";
import { type ExportFormat, exportEncoder } from "./encoder.js";

/**
 * Runs one read of an export. Each batch is read by its own call: one statement, or a short transaction
 * (a tenant's, for row-level security), never one transaction held open across the whole export (on PGlite
 * that would hold its only connection; on PostgreSQL, a snapshot pinned for minutes).
 */
export type BatchReader = <T>(read: (executor: Executor) => Promise<T>) => Promise<T>;

export interface ExportOptions {
  /** Events read per statement. @defaultValue 5000 */
  batchRows?: number;
  /**
   * The snapshot to read in (`eventTotals`' own, so a total announced first matches the rows exactly);
   * absent, the first batch's.
   */
  snapshot?: string | undefined;
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
 * Stream every event matching `filter` into `sink` as one file of `format`, oldest first by (time, id), and
 * end the sink. **Exact**: all batches read in one snapshot (see `readEvents`), so the file holds every
 * event committed before the export began exactly once, whatever writers do meanwhile. **Bounded memory**:
 * a batch is read while the previous one is encoded and written, and the next waits for the sink to drain.
 * **Deterministic**: the same range gives the same bytes. Returns the rows, bytes and their sha256.
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
  const { batchRows = 5000, onProgress } = options;
  const run: BatchReader = typeof source === "function" ? source : (read) => read(source);
  const readAfter = (after: ReadPosition | undefined): Promise<ReadPage> =>
    run((executor) =>
      readEvents(executor, filter, { order: "asc", limit: batchRows, after, snapshot: options.snapshot }),
    );

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

  let next: Promise<ReadPage> | undefined = readAfter(undefined);
  await emit(encoder.start());
  while (next !== undefined) {
    const page: ReadPage = await next;
    // Read ahead: the database works on the next batch while this one is encoded and written.
    next = page.next === undefined ? undefined : readAfter(page.next);
    // A failed read-ahead is awaited (and thrown) in the next round; until then it must not go unhandled.
    next?.catch(() => {});
    rows += page.events.length;
    await emit(encoder.batch(page.events));
    onProgress?.(rows);
  }
  await emit(encoder.end());
  await new Promise<void>((resolve, reject) => {
    sink.end((error?: Error | null) => (error ? reject(error) : resolve()));
  });
  return { rows, bytes, sha256: hash.digest("hex") };
}
