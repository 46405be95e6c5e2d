// npm run bench:archive — retention of one month of ROWS events: export (COPY → gzip file), read back and
// verified, detached and dropped (`runRetention`), then `importArchive` of the file (gunzip → COPY FROM into a
// new table, attached). Seeded server-side (insert … select generate_series) on a fresh database, with the
// rollup checkpoint moved past the seeded rows (retention drops only counted events). rows_per_s: rows over
// the whole archive run (export + verification + drop); import_rows_per_s: rows over the import;
// bytes_per_row: the archive file's size per row. One JSON line.
//   node bench/archive.mjs [--rows N]     (or ROWS=N; default 1,000,000)

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { dropDatabase, freshDatabase, round } from "./lib.mjs";

const flag = process.argv.indexOf("--rows");
const ROWS = Number(flag > 0 ? process.argv[flag + 1] : (process.env.ROWS ?? 1_000_000));
const database = "herald_archive_bench";
const month = "2025-01-01T00:00:00Z";

const url = await freshDatabase(database);
const { openDatabase } = await import("../dist/db/client.js");
const { migrate } = await import("../dist/db/migrate.js");
const { runRetention, importArchive } = await import("../dist/retention/index.js");
const herald = await openDatabase({ url });
await migrate(herald.db);
await herald.close();

const sql = postgres(url, {
  max: 3,
  onnotice: () => {},
  debug: process.env.STEPS
    ? (_c, q) => console.error(Math.round(performance.now()), q.slice(0, 60))
    : undefined,
});
const dir = await mkdtemp(join(tmpdir(), "herald-archive-bench-"));
try {
  const [tenant] = await sql`insert into tenants (name) values ('bench') returning id`;
  await sql`select herald_ensure_partitions('events', ${month}::timestamptz, 1)`;
  const chunk = 250_000;
  for (let from = 1; from <= ROWS; from += chunk) {
    const to = Math.min(ROWS, from + chunk - 1);
    await sql`
      insert into events (tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        correlation_id, sequence_number, ts)
      select ${tenant.id}::uuid,
        (array['message.delivered','message.opened','message.clicked','contact.created','order.placed'])[1 + i % 5],
        (array['system','webhook','manual','cron','workflow'])[1 + i % 5]::event_source,
        'contact-' || (i % 20000),
        case when i % 3 = 0 then 'session-' || (i % 7000) end,
        case when i % 10 < 4 then md5(i::text)::uuid end,
        jsonb_build_object('n', i, 'email', 'user' || (i % 20000) || '@example.com',
          'subject', 'Order #' || i || ', "thanks"', 'amount', (i % 1000) / 10.0, 'tags', jsonb_build_array('a', 'b')),
        case when i % 4 = 0 then jsonb_build_object('ip', '10.0.' || (i % 250) || '.1') else '{}'::jsonb end,
        case when i % 2 = 0 then 'corr-' || (i / 2) end,
        case when i % 5 = 0 then i end,
        ${month}::timestamptz + ((i - 1)::float8 / ${ROWS}) * interval '30 days'
      from generate_series(${from}::int, ${to}::int) i`;
  }
  await sql`update event_rollup_checkpoint set transaction_id = pg_current_xact_id(), position = 9e15`;
  await sql`vacuum analyze events`;

  const started = performance.now();
  const result = await runRetention(sql, {
    archiveDir: dir,
    retentionMonths: 1,
    month: "2025-01",
    afterStep: process.env.STEPS
      ? (step) => console.error(step, Math.round(performance.now() - started))
      : undefined,
  });
  const archiveSeconds = (performance.now() - started) / 1000;
  const [row] = await sql`select path, bytes::float8 as bytes from archives where table_name = 'events'`;

  const importStarted = performance.now();
  const imported = await importArchive(sql, row.path);
  const importSeconds = (performance.now() - importStarted) / 1000;
  if (result.rows !== ROWS || imported.inserted !== ROWS) {
    throw new Error(`archived ${result.rows}, imported ${imported.inserted}, expected ${ROWS}`);
  }
  console.log(
    JSON.stringify({
      bench: "archive",
      rows: ROWS,
      rows_per_s: Math.round(ROWS / archiveSeconds),
      bytes_per_row: round(row.bytes / ROWS, 1),
      import_rows_per_s: Math.round(ROWS / importSeconds),
    }),
  );
} finally {
  await sql.end();
  await rm(dir, { recursive: true, force: true });
  await dropDatabase(database);
}
