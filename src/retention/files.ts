import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import postgres from "postgres";

/**
 * Archive files: a partition streamed out with COPY into `<partition>.copy.gz` and read back, each row counted
 * and hashed on the way (see `archive.ts` for what the files are and how retention uses them).
 */

/** The columns of `table` in order (the archive's columns, and COPY FROM's list on import). */
export async function columnsOf(sql: postgres.Sql, table: string): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select attname as name from pg_attribute
    where attrelid = ${table}::regclass and attnum > 0 and not attisdropped order by attnum`;
  return rows.map((r) => r.name);
}

/** A name as a quoted SQL identifier. */
export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

export const columnList = (columns: string[]) => columns.map(quoteIdent).join(", ");

/** A client of `max` connections of its own to `sql`'s database, for work that must not share the caller's. */
export function ownClient(sql: postgres.Sql, max: number): postgres.Sql {
  return postgres({ ...sql.options, max, onnotice: () => {} } as unknown as postgres.Options<
    Record<string, never>
  >);
}

/**
 * Counts COPY text rows (one per newline: values never hold a raw newline) and hashes them as they pass (unless
 * `hashing` is off: an import has checked the file's own SHA-256 already).
 */
export class RowMeter extends Transform {
  readonly hash = createHash("sha256");
  rows = 0;
  bytes = 0;
  private lastReport = 0;
  constructor(
    private readonly report?: (rows: number) => void,
    private readonly hashing = true,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
    if (this.hashing) this.hash.update(chunk);
    this.bytes += chunk.length;
    let at = chunk.indexOf(10);
    while (at !== -1) {
      this.rows++;
      at = chunk.indexOf(10, at + 1);
    }
    if (this.report && this.rows - this.lastReport >= 10_000) {
      this.lastReport = this.rows;
      this.report(this.rows);
    }
    // postgres.js gives a chunk per row: passed on in batches, gzip and the file see few large writes.
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= 1 << 20) this.push(this.takeBatch());
    done();
  }
  override _flush(done: TransformCallback) {
    if (this.pendingBytes > 0) this.push(this.takeBatch());
    done();
  }
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private takeBatch(): Buffer {
    const batch = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return batch;
  }
}

/**
 * Run `copy … to stdout` on a connection of its own, closed when `consume` is done. postgres.js pauses the
 * socket of a COPY stream that is not read fast enough and resumes it when read again; paused on the last
 * chunk (always possible: several chunks and the end arrive in one read), it is never resumed, and the next
 * query on that connection would wait forever. A connection of its own is closed instead of reused.
 */
export async function copyOut<T>(
  sql: postgres.Sql,
  statement: string,
  consume: (source: Readable) => Promise<T>,
): Promise<T> {
  const own = ownClient(sql, 1);
  try {
    return await consume(await own.unsafe(statement).readable());
  } finally {
    await own.end({ timeout: 0 });
  }
}

/** Hashes what passes through (the compressed file's bytes). */
class FileHash extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

export interface FileFacts {
  rows: number;
  bytes: number;
  sha256: string;
  contentSha256: string;
}

/** Stream the partition out with COPY into `<dir>/<partition>.copy.gz`, durably (temporary name, fsync, rename). */
export async function exportPartition(
  sql: postgres.Sql,
  table: string,
  partition: string,
  dir: string,
  report?: (rows: number) => void,
): Promise<FileFacts & { path: string }> {
  await mkdir(dir, { recursive: true });
  const path = resolve(join(dir, `${partition}.copy.gz`));
  const temporary = `${path}.${process.pid}.tmp`;
  const columns = await columnsOf(sql, table);
  const meter = new RowMeter(report);
  const fileHash = new FileHash();
  try {
    await copyOut(sql, `copy "${partition}" (${columnList(columns)}) to stdout`, (source) =>
      pipeline(source, meter, createGzip({ level: 1 }), fileHash, createWriteStream(temporary)),
    );
    const handle = await open(temporary, "r+");
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
    const directory = await open(dir, "r");
    await directory.sync().catch(() => {});
    await directory.close();
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return {
    path,
    rows: meter.rows,
    bytes: fileHash.bytes,
    sha256: fileHash.hash.digest("hex"),
    contentSha256: meter.hash.digest("hex"),
  };
}

/** Read an archive file back: its own SHA-256, and the count and SHA-256 of the rows it decompresses to. */
export async function readArchiveFile(path: string, report?: (rows: number) => void): Promise<FileFacts> {
  const fileHash = new FileHash();
  const meter = new RowMeter(report);
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  await pipeline(createReadStream(path), fileHash, createGunzip(), meter, sink);
  return {
    rows: meter.rows,
    bytes: fileHash.bytes,
    sha256: fileHash.hash.digest("hex"),
    contentSha256: meter.hash.digest("hex"),
  };
}

/** The SHA-256 of a file alone (import refuses a file whose checksum is not its archive row's). */
export async function fileSha256(path: string): Promise<string> {
  const hash = new FileHash();
  await pipeline(createReadStream(path), hash, new Writable({ write: (_c, _e, done) => done() }));
  return hash.hash.digest("hex");
}
