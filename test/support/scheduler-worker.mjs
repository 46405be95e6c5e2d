// A scheduler worker in its own process, for test/scheduler.e2e.spec.ts. Its `test.slot` action records each
// slot it runs in `slot_runs` inside the slot's transaction; with HANG=1 it hangs there instead of committing
// (and says so), to be killed with SIGKILL mid-transaction.
import { sql } from "drizzle-orm";
import { openDatabase } from "../../dist/db/client.js";
import { createSchedulerWorker } from "../../dist/scheduler/processor.js";
import { scheduledActionRegistry } from "../../dist/scheduler/registry.js";

const name = process.env.WORKER_NAME ?? "worker";
const hang = process.env.HANG === "1";
const database = await openDatabase({ url: process.env.SCHEDULER_DB_URL });
const registry = scheduledActionRegistry({
  "test.slot": async (tx, runs) => {
    for (const run of runs) {
      await tx.execute(
        sql`insert into slot_runs (action_id, slot, worker) values (${run.actionId}, ${run.slot.toISOString()}, ${name})`,
      );
      if (hang) {
        process.stdout.write(`hanging in ${run.slot.toISOString()}\n`);
        await new Promise(() => {});
      }
    }
    // Hold the transaction a moment, as real work would.
    await new Promise((r) => setTimeout(r, 100));
  },
});
const worker = createSchedulerWorker({
  db: database.db,
  listen: database.listen,
  registry,
  leaseMs: Number(process.env.LEASE_MS ?? 1200),
  pollIntervalMs: 50,
  workerId: name,
});
worker.on("worker:error", (error) => process.stderr.write(`${String(error)}\n`));
await worker.start();
process.stdout.write("ready\n");
process.on("SIGTERM", () => {
  worker
    .stop()
    .then(() => database.close())
    .then(() => process.exit(0));
});
