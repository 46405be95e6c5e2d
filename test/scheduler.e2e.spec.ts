import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { scheduleAction } from "../src/scheduler/actions.js";
import { scheduledActionRegistry } from "../src/scheduler/registry.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { makeTenant } from "./support/fixtures.js";
import { cleanEnv, type Spawned, spawnProcess } from "./support/process.js";
import { eventually } from "./support/wait.js";

const script = fileURLToPath(new URL("./support/scheduler-worker.mjs", import.meta.url));
const everyMs = 4000;

/**
 * A repeating action across three worker processes, one of them killed with SIGKILL while its handler is
 * inside the slot's transaction (its effect written, not committed): the slot runs again elsewhere once the
 * lease expires, and every slot — that one included — runs exactly once.
 */
describe.skipIf(!hasPostgres())("a repeating action across three worker processes", () => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await createTestDatabase("postgres");
    await t.database.db.execute(
      sql`create table slot_runs (action_id uuid not null, slot timestamptz not null, worker text not null)`,
    );
  });
  afterAll(async () => {
    await t?.drop();
  });

  const start = (name: string, hang = false): Spawned =>
    spawnProcess(process.execPath, [script], {
      env: cleanEnv({ SCHEDULER_DB_URL: t.url, WORKER_NAME: name, HANG: hang ? "1" : "0" }),
    });

  it("runs each slot exactly once when a worker dies mid-slot", async () => {
    const tenantId = await makeTenant(t.database.db);
    const victim = start("victim", true);
    await victim.waitFor(/ready/);
    const registry = scheduledActionRegistry({ "test.slot": async () => {} });
    const action = await scheduleAction(
      t.database.db,
      // run_once: should the survivors take over only after the next slot is due (a loaded machine), the
      // killed slot still runs (once, for the slots it held up), and the schedule goes on from there.
      { tenantId, action: "test.slot", every: everyMs / 1000, missed: "run_once" },
      { registry },
    );
    // The victim alone is running: it takes the first slot and hangs inside its transaction.
    const [, hungSlot] = (await victim.waitFor(/hanging in (\S+)/, 15_000)) as unknown as [string, string];
    expect(hungSlot).toBe(action.next_run_at);
    const survivors = [start("survivor-1"), start("survivor-2")];
    await Promise.all(survivors.map((s) => s.waitFor(/ready/)));
    // Three processes run; the victim dies with the slot's transaction open.
    victim.child.kill("SIGKILL");
    await victim.exited;

    const slots = () =>
      query<{ slot: string; runs: number; workers: string }>(
        t.database.db,
        sql`select to_char(slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as slot, count(*)::int as runs,
            string_agg(worker, ',') as workers
          from slot_runs where action_id = ${action.id} group by slot order by slot`,
      );
    await eventually(async () => (await slots()).length >= 5, 40_000, "five slots run");
    await Promise.all(
      survivors.map((s) => {
        s.child.kill("SIGTERM");
        return s.exited;
      }),
    );

    const ran = await slots();
    // Every slot exactly once, none by the victim (its transaction rolled back), the first one included.
    expect(ran.every((r) => r.runs === 1)).toBe(true);
    expect(ran.map((r) => r.workers)).not.toContain("victim");
    expect(ran[0]!.slot).toBe(hungSlot);
    // On the grid, and from the first slot after the killed one, none left out.
    const times = ran.map((r) => Date.parse(r.slot));
    for (const time of times) expect((time - Date.parse(hungSlot)) % everyMs).toBe(0);
    expect(times.slice(1)).toEqual(times.slice(1).map((_, i) => times[1]! + i * everyMs));
    const [row] = await query<{ attempts: number; status: string }>(
      t.database.db,
      sql`select attempts, status from scheduled_actions where action_id = ${action.id}`,
    );
    expect(row!.status).toBe("pending");
  }, 90_000);
});
