import { sql } from "drizzle-orm";
import { createDispatcher } from "../dist/bus/dispatcher.js";
import { HandlerRegistry } from "../dist/bus/sinks/handlers.js";
import { openDatabase, query } from "../dist/db/client.js";
import { writeEvent } from "../dist/events/write.js";
import { percentile } from "./lib.mjs";
const database = await openDatabase({ url: "postgres://postgres@127.0.0.1:5432/herald_bench", poolSize: 4 });
const db = database.db;
const [{ id: tenantId }] = await query(db, sql`select id from tenants where name = 'bench'`);
let resolveStart;
const handlers = new HandlerRegistry();
handlers.register("latency", () => resolveStart(performance.now()));
let tNotify = 0, tClaimed = 0;
await database.listen("herald_queue_outbox", () => { tNotify = performance.now(); });
const worker = createDispatcher({ db, listen: database.listen, handlers, concurrency: 1, batchSize: 10, pollIntervalMs: 2000 });
worker.on("job:claimed", () => { tClaimed = performance.now(); });
await worker.start();
const parts = { write: [], notify: [], claim: [], handler: [] };
for (let i = 0; i < 600; i++) {
  const started = new Promise((r) => { resolveStart = r; });
  const t0 = performance.now();
  await writeEvent(db, { tenantId, eventType: "latency.sample", source: "system", payload: { i } });
  const tw = performance.now();
  const th = await started;
  if (i < 100) continue;
  parts.write.push(tw - t0); parts.notify.push(tNotify - t0); parts.claim.push(tClaimed - tNotify); parts.handler.push(th - tClaimed);
}
for (const [k, v] of Object.entries(parts)) { v.sort((a, b) => a - b); console.log(k, percentile(v, 0.5).toFixed(3), percentile(v, 0.99).toFixed(3)); }
await worker.stop();
await database.close();
