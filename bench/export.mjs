// npm run bench:export — `herald export` of EVENTS events (one tenant, two months) as NDJSON and CSV, against
// `COPY (select the same rows) TO STDOUT` in the same run. Seeded server-side (insert … select generate_series)
// on a fresh database. Each export runs as its own process (`node dist/cli/main.js export --out /dev/null`):
// rows/s over the export's own time and the process's peak RSS, both from its closing line. COPY's rows/s is
// the time to read its whole output here. One JSON line per format.
//   node bench/export.mjs [--events N]     (or EVENTS=N; default 1,000,000; BATCH=rows for --batch)

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { dropDatabase, freshDatabase, round } from "./lib.mjs";

const flag = process.argv.indexOf("--events");
const EVENTS = Number(flag > 0 ? process.argv[flag + 1] : (process.env.EVENTS ?? 1_000_000));
const database = "herald_export_bench";
const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const start = "2026-10-01";
const end = "2026-11-30"; // a date: the whole of Nov 30
const print = (line) => console.log(JSON.stringify(line));

/** Events spread evenly over Oct and Nov 2026, realistic types, sources, contacts, sessions and payloads. */
async function seed(sql, tenant, n) {
  await sql`select herald_ensure_partitions('events', '2026-10-01T00:00:00Z', 2)`;
  const chunk = 250_000;
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    await sql`
      insert into events (tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        correlation_id, sequence_number, ts)
      select ${tenant}::uuid,
        (array['message.delivered','message.opened','message.clicked','message.bounced','contact.created',
          'contact.updated','order.placed','order.shipped','session.started','page.viewed'])[1 + i % 10],
        (array['system','webhook','manual','cron','workflow'])[1 + i % 5]::event_source,
        'contact-' || (i % 20000),
        case when i % 3 = 0 then 'session-' || (i % 7000) end,
        case when i % 10 < 4 then md5(i::text)::uuid end,
        jsonb_build_object('n', i, 'email', 'user' || (i % 20000) || '@example.com',
          'subject', 'Order #' || i || ', "thanks"', 'amount', (i % 1000) / 10.0, 'tags', jsonb_build_array('a', 'b')),
        case when i % 4 = 0 then jsonb_build_object('ip', '10.0.' || (i % 250) || '.1') else '{}'::jsonb end,
        case when i % 2 = 0 then 'corr-' || (i / 2) end,
        case when i % 5 = 0 then i end,
        timestamptz '2026-10-01T00:00:00Z' + ((i - 1)::float8 / ${n}) * interval '61 days'
      from generate_series(${from}::int, ${to}::int) i`;
  }
  await sql`vacuum analyze events`;
  // The seed's write-back done now, not under the timed exports.
  await sql`checkpoint`;
}

/** Run `herald export` to /dev/null; its closing line's numbers. */
function runExport(url, tenant, format) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        cli,
        "export",
        "--tenant",
        tenant,
        "--start",
        start,
        "--end",
        end,
        "--format",
        format,
        "--out",
        "/dev/null",
        ...(process.env.BATCH ? ["--batch", process.env.BATCH] : []),
      ],
      { env: { ...process.env, DATABASE_URL: url }, stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("exit", (code) => {
      const line = err.match(/sha256=(\w+) rows=(\d+) bytes=(\d+) seconds=([\d.]+) peak_rss_mb=(\d+)/);
      if (code !== 0 || !line) return reject(new Error(`herald export exited with ${code}:\n${err}`));
      resolve({
        sha256: line[1],
        rows: Number(line[2]),
        bytes: Number(line[3]),
        seconds: Number(line[4]),
        peakRssMb: Number(line[5]),
      });
    });
  });
}

/** COPY of the same rows, columns and order to STDOUT, read to the end here; rows/s. */
async function copyRate(sql, tenant, format) {
  const options = format === "csv" ? "(format csv, header true)" : "";
  const statement = `copy (select id, event_type, source, ts, created_at, contact_id, session_id, message_id,
      event_key, correlation_id, causation_id, schema_version, sequence_number, payload, metadata
    from events where tenant_id = '${tenant}' and ts >= '${start}T00:00:00Z' and ts < '2026-12-01T00:00:00Z'
    order by ts, id) to stdout ${options}`;
  const t = performance.now();
  const stream = await sql.unsafe(statement).readable();
  let bytes = 0;
  // Flowing mode, never paused: postgres.js's COPY stream can stall when paused and resumed (issue 917).
  await new Promise((resolve, reject) => {
    stream.on("data", (chunk) => {
      bytes += chunk.length;
    });
    stream.on("end", resolve);
    stream.on("error", reject);
  });
  return { seconds: (performance.now() - t) / 1000, bytes };
}

const url = await freshDatabase(database);
const sql = postgres(url, { max: 1, onnotice: () => {} });
try {
  const { openDatabase } = await import("../dist/db/client.js");
  const { migrate } = await import("../dist/db/migrate.js");
  const herald = await openDatabase({ url });
  await migrate(herald.db);
  await herald.close();
  const [{ id: tenant }] = await sql`insert into tenants (name) values ('bench') returning id`;
  const seeded = performance.now();
  await seed(sql, tenant, EVENTS);
  process.stderr.write(`seeded ${EVENTS} events in ${round((performance.now() - seeded) / 1000, 1)} s\n`);

  for (const format of ["ndjson", "csv"]) {
    const copy = await copyRate(sql, tenant, format);
    const result = await runExport(url, tenant, format);
    if (result.rows !== EVENTS) throw new Error(`exported ${result.rows} rows of ${EVENTS}`);
    const rowsPerS = result.rows / result.seconds;
    const copyRowsPerS = EVENTS / copy.seconds;
    print({
      bench: "export",
      format,
      rows: result.rows,
      rows_per_s: Math.round(rowsPerS),
      copy_rows_per_s: Math.round(copyRowsPerS),
      ratio: round(rowsPerS / copyRowsPerS),
      peak_rss_mb: result.peakRssMb,
    });
  }
} finally {
  await sql.end();
  if (!process.env.KEEP) await dropDatabase(database);
}
