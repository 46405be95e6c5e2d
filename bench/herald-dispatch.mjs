// Herald delivering N events end to end through the real dispatcher (outbox claim → in-process handler → ack),
// one worker process. The N events and their outbox rows are written beforehand in one statement.
import { sql } from "drizzle-orm";
import { createDispatcher } from "../dist/bus/dispatcher.js";
import { HandlerRegistry } from "../dist/bus/sinks/handlers.js";
import { openDatabase } from "../dist/db/client.js";
import { migrate } from "../dist/db/migrate.js";
import { timeDrain } from "./lib.mjs";

const N = Number(process.env.N ?? 20000);
const C = Number(process.env.C ?? 24);
const BATCH = Number(process.env.BATCH ?? 1000);
const database = await openDatabase({ url: process.env.BENCH_URL, poolSize: 4 });
const db = database.db;
await migrate(db);
await db.execute(sql`truncate events, event_keys, outbox, dead_letters, subscriptions cascade`);
await db.execute(sql`insert into tenants (name) values ('bench') on conflict do nothing`);
await db.execute(sql`insert into subscriptions (tenant_id, name, event_types, sink, secret)
  select id, 'noop', '{bench.*}', '{"type":"handler","name":"noop"}', 'whsec_x' from tenants where name = 'bench'`);
await db.execute(sql`with e as (
    insert into events (tenant_id, event_type, source, payload)
    select t.id, 'bench.noop', 'system', jsonb_build_object('i', i) from tenants t, generate_series(1, ${N}) i
    where t.name = 'bench' returning id, tenant_id, ts, event_type)
  insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type, handler)
  select e.tenant_id, s.id, e.id, e.ts, e.event_type, s.sink->>'name' from e join subscriptions s on s.tenant_id = e.tenant_id`);
await db.execute(sql`vacuum analyze outbox`);

const handlers = new HandlerRegistry();
handlers.register("noop", () => {});
const worker = createDispatcher({ db, listen: database.listen, handlers, batchSize: BATCH, concurrency: C });
const { ms, peakRssMb } = await timeDrain(worker, N, () =>
  Promise.all(Array.from({ length: 4 }, () => db.execute(sql`select pg_sleep(0.01)`))),
);
console.log(
  JSON.stringify({
    bench: "dispatch",
    system: "herald",
    jobs: N,
    jobs_per_s: Math.round((N / ms) * 1000),
    peak_rss_mb: peakRssMb,
  }),
);
await database.close();
