// Herald's claim engine draining N no-op jobs, one worker process: rows of `scheduled_actions` (a job with
// its payload inline, as a graphile-worker job is) claimed in batches and acknowledged in batches.
import { sql } from "drizzle-orm";
import { openDatabase } from "../dist/db/client.js";
import { migrate } from "../dist/db/migrate.js";
import { scheduledActionsQueue } from "../dist/queue/definitions.js";
import { Worker } from "../dist/queue/worker.js";
import { peakRss } from "./lib.mjs";

const N = Number(process.env.N ?? 20000);
const C = Number(process.env.C ?? 24);
const BATCH = Number(process.env.BATCH ?? 1000);
const database = await openDatabase({ url: process.env.BENCH_URL, poolSize: 4 });
const db = database.db;
await migrate(db);
await db.execute(sql`truncate scheduled_actions`);
await db.execute(sql`insert into tenants (name) values ('bench') on conflict do nothing`);
await db.execute(sql`insert into scheduled_actions (tenant_id, action_type, payload, run_at)
  select t.id, 'noop', jsonb_build_object('id', i), now() from tenants t, generate_series(1, ${N}) i where t.name = 'bench'`);
await db.execute(sql`vacuum analyze scheduled_actions`);

let done = 0;
let finish;
const finished = new Promise((r) => {
  finish = r;
});
const worker = new Worker({
  queue: scheduledActionsQueue,
  db,
  listen: database.listen,
  batchSize: BATCH,
  concurrency: C,
  handler: { mode: "at-least-once", handle: async () => {} },
});
worker.on("job:completed", (rows) => {
  done += rows.length;
  if (done >= N) finish();
});
worker.on("worker:error", (e) => console.error(e));
// Warm the pool as graphile-worker's run is (its pool served the migrations and the enqueue).
await Promise.all(Array.from({ length: 4 }, () => db.execute(sql`select pg_sleep(0.01)`)));
const rss = peakRss();
const t0 = performance.now();
await worker.start();
await finished;
const ms = performance.now() - t0;
await worker.stop();
console.log(
  JSON.stringify({
    bench: "drain",
    system: "herald",
    jobs: N,
    jobs_per_s: Math.round((N / ms) * 1000),
    peak_rss_mb: rss(),
  }),
);
await database.close();
