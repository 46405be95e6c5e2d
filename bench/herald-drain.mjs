// Herald's claim engine draining N no-op outbox rows (in-process handler sink), one worker process.
import { sql } from "drizzle-orm";
import { outboxQueue } from "../dist/bus/outboxQueue.js";
import { openDatabase } from "../dist/db/client.js";
import { migrate } from "../dist/db/migrate.js";
import { Worker } from "../dist/queue/worker.js";
import { peakRss } from "./lib.mjs";

const N = Number(process.env.N ?? 20000);
const C = Number(process.env.C ?? 24);
const BATCH = Number(process.env.BATCH ?? 500);
const database = await openDatabase({ url: process.env.BENCH_URL, poolSize: 4 });
await migrate(database.db);
await database.db.execute(sql`insert into tenants (name) values ('bench') on conflict do nothing`);
await database.db.execute(sql`insert into subscriptions (tenant_id, name, event_types, sink, secret)
  select id, 'noop', '{bench.*}', '{"type":"handler","name":"noop"}', 'whsec_x' from tenants where name = 'bench'`);
await database.db.execute(sql`insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type)
  select s.tenant_id, s.id, herald_uuidv7(), now(), 'bench.noop' from subscriptions s, generate_series(1, ${N})`);
await database.db.execute(sql`vacuum analyze outbox`);

let done = 0;
let finish;
const finished = new Promise((r) => {
  finish = r;
});
const worker = new Worker({
  queue: outboxQueue,
  db: database.db,
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
