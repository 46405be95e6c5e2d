// Idle latency: 1,000 sequential samples of writeEvent (committed) → in-process handler started, after 100
// warm-ups, with the dispatcher woken by LISTEN/NOTIFY.
import { sql } from "drizzle-orm";
import { createDispatcher } from "../dist/bus/dispatcher.js";
import { HandlerRegistry } from "../dist/bus/sinks/handlers.js";
import { openDatabase, query } from "../dist/db/client.js";
import { migrate } from "../dist/db/migrate.js";
import { writeEvent } from "../dist/events/write.js";
import { LocalHandOver } from "../dist/queue/handOver.js";
import { peakRss, percentile, round } from "./lib.mjs";

const N = Number(process.env.N ?? 1000);
const database = await openDatabase({ url: process.env.BENCH_URL, poolSize: 4 });
const db = database.db;
await migrate(db);
await db.execute(sql`truncate events, event_keys, outbox, dead_letters, subscriptions cascade`);
await db.execute(sql`insert into tenants (name) values ('bench') on conflict do nothing`);
const [{ id: tenantId }] = await query(db, sql`select id from tenants where name = 'bench'`);
await db.execute(sql`insert into subscriptions (tenant_id, name, event_types, sink, secret)
  values (${tenantId}, 'latency', '{latency.*}', '{"type":"handler","name":"latency"}', 'whsec_x')`);
let resolveStart;
const handlers = new HandlerRegistry();
handlers.register("latency", () => resolveStart(performance.now()));
// The writer hands its deliveries straight to the dispatcher (docs/queue.md, "Direct hand-over").
const handOver = new LocalHandOver(db);
const worker = createDispatcher({
  db,
  handOver,
  listen: database.listen,
  handlers,
  concurrency: 1,
  batchSize: 10,
  pollIntervalMs: 2000,
});
await worker.start();
const rss = peakRss();
const samples = [];
for (let i = 0; i < N + 100; i++) {
  const started = new Promise((r) => {
    resolveStart = r;
  });
  const t0 = performance.now();
  await writeEvent(
    db,
    { tenantId, eventType: "latency.sample", source: "system", payload: { i } },
    { handOver },
  );
  const t1 = await started;
  if (i >= 100) samples.push(t1 - t0);
}
samples.sort((a, b) => a - b);
await worker.stop();
console.log(
  JSON.stringify({
    bench: "latency",
    system: "herald",
    samples: N,
    p50_ms: round(percentile(samples, 0.5)),
    p99_ms: round(percentile(samples, 0.99)),
    max_ms: round(samples.at(-1)),
    peak_rss_mb: rss(),
  }),
);
await database.close();
