// Herald's claim engine draining N no-op jobs, one worker process: rows of `scheduled_actions` (a job with
// its payload inline, as a graphile-worker job is) claimed in batches and acknowledged in batches.
import { sql } from "drizzle-orm";
import { openDatabase } from "../dist/db/client.js";
import { migrate } from "../dist/db/migrate.js";
import { scheduledActionsQueue } from "../dist/queue/definitions.js";
import { Worker } from "../dist/queue/worker.js";
import { timeDrain } from "./lib.mjs";

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

const worker = new Worker({
  queue: scheduledActionsQueue,
  db,
  listen: database.listen,
  batchSize: BATCH,
  concurrency: C,
  handler: { mode: "at-least-once", handle: async () => {} },
});
const { ms, peakRssMb } = await timeDrain(worker, N, () =>
  Promise.all(Array.from({ length: 4 }, () => db.execute(sql`select pg_sleep(0.01)`))),
);
console.log(
  JSON.stringify({
    bench: "drain",
    system: "herald",
    jobs: N,
    jobs_per_s: Math.round((N / ms) * 1000),
    peak_rss_mb: peakRssMb,
  }),
);
await database.close();
