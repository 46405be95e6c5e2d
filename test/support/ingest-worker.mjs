// A webhook processor in its own process, SIGKILLed by test/ingest.crash.e2e.spec.ts in the middle of a run.
import { openDatabase } from "../../dist/db/client.js";
import { createProcessor } from "../../dist/ingest/processor.js";

const database = await openDatabase({ url: process.env.CRASH_DB_URL });
const worker = createProcessor({
  db: database.db,
  listen: database.listen,
  chunkEvents: 1,
  concurrency: 1,
  batchSize: 5,
  leaseMs: Number(process.env.LEASE_MS ?? 1500),
  workerId: "victim",
});
worker.on("job:completed", (rows) => process.stdout.write(`completed ${rows.length}\n`));
await worker.start();
