// A dispatcher in its own process, killed with SIGKILL by test/crash.e2e.spec.ts. Each delivery is recorded in
// `crash_deliveries` (its own insert: effects outside the queue transaction, as a real sink's would be).
import { sql } from "drizzle-orm";
import { createDispatcher } from "../../dist/bus/dispatcher.js";
import { HandlerRegistry } from "../../dist/bus/sinks/handlers.js";
import { openDatabase } from "../../dist/db/client.js";

const database = await openDatabase({ url: process.env.CRASH_DB_URL });
const handlers = new HandlerRegistry();
let delivered = 0;
handlers.register("crash", async (event) => {
  await database.db.execute(
    sql`insert into crash_deliveries (event_id, worker) values (${event.id}, 'victim')`,
  );
  // HANG_AFTER: the victim's handlers hang from that delivery on, so it surely holds rows when killed.
  if (++delivered >= Number(process.env.HANG_AFTER ?? Number.POSITIVE_INFINITY)) await new Promise(() => {});
  await new Promise((r) => setTimeout(r, 40));
});
// WRITE_TENANT: the victim writes its own events, one per statement, and claims nothing itself (no LISTEN, a
// poll once a minute): every row it holds was handed over by its writer.
const writes = process.env.WRITE_TENANT;
const { LocalHandOver } = await import("../../dist/queue/handOver.js");
const handOver = new LocalHandOver(database.db);
const worker = createDispatcher({
  db: database.db,
  handOver,
  ...(writes ? { pollIntervalMs: 60_000 } : { listen: database.listen }),
  handlers,
  batchSize: 20,
  concurrency: 4,
  leaseMs: Number(process.env.LEASE_MS ?? 1500),
  workerId: "victim",
});
worker.on("job:claimed", (rows) => {
  process.stdout.write(
    `${JSON.stringify({ claimed: rows.map((r) => ({ id: r.id, attempts: r.attempts })) })}\n`,
  );
});
await worker.start();
if (writes) {
  const { writeEvent } = await import("../../dist/events/write.js");
  for (let i = 0; i < Number(process.env.WRITE_COUNT ?? 40); i++) {
    await writeEvent(
      database.db,
      {
        tenantId: writes,
        eventType: "crash.test",
        source: "system",
        payload: { i },
      },
      { handOver },
    );
  }
}
