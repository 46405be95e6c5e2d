import { createHash } from "node:crypto";
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServerDatabase, hasPostgres } from "./support/databases.js";
import { cleanEnv, spawnProcess } from "./support/process.js";

const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const events = 1_000_000;
const peakRssLimitMb = 200;

interface ExportRun {
  sha256: string;
  rows: number;
  bytes: number;
  seconds: number;
  /** From the CLI's own closing line (getrusage's maxrss). */
  peakRssMb: number;
  /** The highest VmHWM read from /proc while it ran (a check on the line above). */
  observedHwmMb: number;
}

/** Run the built `herald export` to the end; its closing line, and its high-water mark seen from outside. */
async function runExport(url: string, args: string[]): Promise<ExportRun> {
  const run = spawnProcess(process.execPath, [cli, "export", ...args], {
    env: cleanEnv({ DATABASE_URL: url, LOG_LEVEL: "warn" }),
  });
  let observedKb = 0;
  const poll = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${run.child.pid}/status`, "utf8");
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      observedKb = Math.max(observedKb, kb);
    } catch {
      // exited
    }
  }, 100);
  const code = await run.exited;
  clearInterval(poll);
  const output = run.output();
  expect(code, output).toBe(0);
  const line = /sha256=([0-9a-f]{64}) rows=(\d+) bytes=(\d+) seconds=([\d.]+) peak_rss_mb=(\d+)\n/.exec(
    output,
  );
  expect(line, output).not.toBeNull();
  return {
    sha256: line![1]!,
    rows: Number(line![2]),
    bytes: Number(line![3]),
    seconds: Number(line![4]),
    peakRssMb: Number(line![5]),
    observedHwmMb: Math.round(observedKb / 1024),
  };
}

async function fileDigest(path: string): Promise<{ sha256: string; lines: number }> {
  const hash = createHash("sha256");
  let lines = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  }
  return { sha256: hash.digest("hex"), lines };
}

describe.runIf(hasPostgres())("herald export of a million events (PostgreSQL)", () => {
  let server: { url: string; drop(): Promise<void> };
  let sql: postgres.Sql;
  let tenant: string;
  const dir = mkdtempSync(join(tmpdir(), "herald-export-"));

  beforeAll(async () => {
    server = await createServerDatabase();
    sql = postgres(server.url, { max: 2, onnotice: () => {} });
    const tenantId = async (name: string) => {
      const [row] = await sql<{ id: string }[]>`insert into tenants (name) values (${name}) returning id`;
      return row!.id;
    };
    tenant = await tenantId("big");
    const other = await tenantId("other");
    await sql`select herald_ensure_partitions('events', '2026-10-01T00:00:00Z', 2)`;
    // Server-side, in two halves run side by side: a million events over October and November 2026.
    const half = events / 2;
    await Promise.all(
      [0, 1].map(
        (part) => sql`
          insert into events (tenant_id, event_type, source, contact_id, session_id, payload, metadata,
            correlation_id, sequence_number, ts)
          select ${tenant}::uuid,
            (array['message.delivered','message.opened','message.bounced','contact.created','order.placed'])[1 + i % 5],
            (array['system','webhook','manual','cron','workflow'])[1 + i % 5]::event_source,
            'contact-' || (i % 5000), case when i % 3 = 0 then 'session,' || (i % 700) end,
            jsonb_build_object('n', i, 'note', 'row "' || i || '"'),
            case when i % 4 = 0 then '{"ip":"10.0.0.1"}'::jsonb else '{}'::jsonb end,
            case when i % 2 = 0 then 'corr-' || (i / 2) end, case when i % 5 = 0 then i end,
            timestamptz '2026-10-01T00:00:00Z' + (i::float8 / ${events}) * interval '60 days'
          from generate_series(${part * half}::int, ${(part + 1) * half - 1}::int) i`,
      ),
    );
    // Another tenant's events in the same range: never in this tenant's file.
    await sql`insert into events (tenant_id, event_type, source, ts)
      select ${other}::uuid, 'order.placed', 'manual', timestamptz '2026-10-15T00:00:00Z' + i * interval '1 minute'
      from generate_series(1, 1000) i`;
    await sql`vacuum analyze events`;
  }, 120_000);

  afterAll(async () => {
    await sql?.end();
    await server?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Two exports of a million events and a Parquet file: ~40 s alone, several times that beside the browser
  // tests on two cores.
  it("streams every event in bounded memory, the same bytes twice, as many rows as the total", async () => {
    const [counted] = await sql<{ total: number }[]>`
      select count(*)::int as total from events where tenant_id = ${tenant}::uuid
        and ts >= '2026-10-01T00:00:00Z' and ts < '2026-12-01T00:00:00Z'`;
    const total = counted!.total;
    expect(total).toBe(events);
    const args = ["--tenant", tenant, "--start", "2026-10-01", "--end", "2026-11-30", "--format", "ndjson"];
    const file = join(dir, "events.ndjson");

    const first = await runExport(server.url, [...args, "--out", file]);
    const second = await runExport(server.url, [...args, "--out", "/dev/null"]);

    expect(first.rows).toBe(total);
    expect(second.rows).toBe(total);
    expect(second.sha256).toBe(first.sha256);
    expect(second.bytes).toBe(first.bytes);
    // The checksum line is the file's: every byte written, one line per event.
    expect(await fileDigest(file)).toEqual({ sha256: first.sha256, lines: total });
    for (const run of [first, second]) {
      expect(run.peakRssMb).toBeLessThanOrEqual(peakRssLimitMb);
      expect(run.observedHwmMb).toBeLessThanOrEqual(peakRssLimitMb);
    }

    // Parquet: bounded too, as many rows as counted, the first ones the same as the NDJSON file's.
    const parquetFile = join(dir, "events.parquet");
    // October only (half the events), to keep the test's time in bounds: its memory is per row group anyway.
    const parquet = await runExport(server.url, [
      ...["--tenant", tenant, "--start", "2026-10-01", "--end", "2026-10-31", "--format", "parquet"],
      ...["--out", parquetFile],
    ]);
    const [october] = await sql<{ total: number }[]>`
      select count(*)::int as total from events where tenant_id = ${tenant}::uuid
        and ts >= '2026-10-01T00:00:00Z' and ts < '2026-11-01T00:00:00Z'`;
    expect(parquet.rows).toBe(october!.total);
    expect(parquet.peakRssMb).toBeLessThanOrEqual(peakRssLimitMb);
    expect(parquet.observedHwmMb).toBeLessThanOrEqual(peakRssLimitMb);
    const buffer = await asyncBufferFromFile(parquetFile);
    expect(Number((await parquetMetadataAsync(buffer)).num_rows)).toBe(october!.total);
    const head = (await parquetReadObjects({ file: buffer, rowStart: 0, rowEnd: 3 })) as Record<
      string,
      unknown
    >[];
    const start = Buffer.alloc(64 * 1024);
    const fd = openSync(file, "r");
    readSync(fd, start, 0, start.length, 0);
    closeSync(fd);
    const firstLines = start
      .toString("utf8")
      .split("\n")
      .slice(0, 3)
      .map((l) => JSON.parse(l));
    expect(
      head.map((r) => ({
        ...r,
        timestamp: (r.timestamp as Date).toISOString(),
        created_at: (r.created_at as Date).toISOString(),
        sequence_number: r.sequence_number === null ? null : Number(r.sequence_number),
      })),
    ).toEqual(firstLines);

    process.stderr.write(
      `herald export of ${total} events: NDJSON ${first.seconds} s and ${second.seconds} s, peak RSS ${first.peakRssMb} and ${second.peakRssMb} MB; Parquet of ${parquet.rows} in ${parquet.seconds} s, ${parquet.peakRssMb} MB\n`,
    );
  }, 300_000);
});
