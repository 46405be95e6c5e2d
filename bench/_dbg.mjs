import { sql } from "drizzle-orm";
import { createDispatcher } from "../dist/bus/dispatcher.js";
import { HandlerRegistry } from "../dist/bus/sinks/handlers.js";
import { openDatabase, query } from "../dist/db/client.js";
import { writeEvent } from "../dist/events/write.js";
const database = await openDatabase({ url: "postgres://postgres@127.0.0.1:5432/herald_bench", poolSize: 4 });
const db = database.db;
const [{ id: tenantId }] = await query(db, sql`select id from tenants where name = 'bench'`);
let resolveStart;
const handlers = new HandlerRegistry();
handlers.register("latency", () => resolveStart(performance.now()));
let notifies = 0;
await database.listen("herald_queue_outbox", () => { notifies++; });
const worker = createDispatcher({ db, listen: database.listen, handlers, concurrency: 1, batchSize: 10, pollIntervalMs: 2000 });
let claims = 0;
worker.on("job:claimed", (rows) => { claims += rows.length; });
await worker.start();
for (let i = 0; i < 400; i++) {
  const started = new Promise((r) => { resolveStart = r; });
  const t0 = performance.now();
  const n0 = notifies;
  const w = await writeEvent(db, { tenantId, eventType: "latency.sample", source: "system", payload: { i } });
  const t1 = await started;
  if (t1 - t0 > 100) {
    const [o] = await query(db, sql`select status, attempts, next_attempt_at::text, created_at::text, now()::text as now from outbox where event_id = ${w.event.id}`);
    console.log("slow", i, (t1 - t0).toFixed(0), "notifies during", notifies - n0, "claims", claims, o);
  }
}
await worker.stop();
await database.close();
