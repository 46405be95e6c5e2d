import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { outboxQueue } from "../src/bus/outboxQueue.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { createSubscription } from "../src/bus/subscriptions.js";
import { query } from "../src/db/client.js";
import { writeEvents } from "../src/events/write.js";
import { completeBatch } from "../src/queue/complete.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { cleanEnv, spawnProcess } from "./support/process.js";
import { delivered as deliveredCount } from "./support/rollups.js";
import { eventually } from "./support/wait.js";

const script = fileURLToPath(new URL("./support/crash-worker.mjs", import.meta.url));

/** A worker process is SIGKILLed mid-batch; its leases expire and another worker delivers everything. */
describe.skipIf(!hasPostgres())("a killed worker", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("postgres");
  });
  afterAll(() => t?.drop());

  /** A second dispatcher, recording what it delivers as the rescuer's, quick to take over expired leases. */
  async function startRescuer() {
    const db = t.database.db;
    const handlers = new HandlerRegistry();
    handlers.register("crash", async (event) => {
      await db.execute(sql`insert into crash_deliveries (event_id, worker) values (${event.id}, 'rescuer')`);
    });
    const rescuer = createDispatcher({
      db,
      listen: t.database.listen,
      handlers,
      leaseMs: 1500,
      pollIntervalMs: 100,
      workerId: "rescuer",
    });
    await rescuer.start();
    return rescuer;
  }

  it("loses nothing: every event is delivered at least once, and its late completion is refused", async () => {
    const db = t.database.db;
    await db.execute(sql`create table crash_deliveries (event_id uuid not null, worker text not null)`);
    const tenant = await makeTenant(db);
    await createSubscription(db, tenant, {
      name: "crash",
      eventTypes: ["crash.*"],
      sink: { type: "handler", name: "crash" },
    });
    const written = await writeEvents(
      db,
      Array.from({ length: 60 }, (_, i) => ({
        tenantId: tenant,
        eventType: "crash.test",
        source: "system" as const,
        payload: { i },
      })),
    );

    const victim = spawnProcess(process.execPath, [script], {
      env: cleanEnv({ CRASH_DB_URL: t.url!, LEASE_MS: "1500", HANG_AFTER: "5" }),
    });
    const [, claimedJson] = await victim.waitFor(/(\{"claimed":.*\})\n/);
    const claimed = (JSON.parse(claimedJson!) as { claimed: { id: number; attempts: number }[] }).claimed;
    await eventually(
      async () =>
        (await query<{ n: number }>(db, sql`select count(*)::int as n from crash_deliveries`))[0]!.n >= 3,
    );
    victim.child.kill("SIGKILL");
    expect(await victim.exited).toBeNull(); // killed by the signal, not exited
    const inFlight = await query<{ n: number }>(
      db,
      sql`select count(*)::int as n from outbox where status = 'processing' and locked_by = 'victim'`,
    );
    expect(inFlight[0]!.n).toBeGreaterThan(0);

    const rescuer = await startRescuer();
    // A completed row is deleted as it is counted: every row gone, each counted once.
    await eventually(
      async () => (await count(db, "outbox", `tenant_id = '${tenant}'`)) === 0,
      20_000,
      "every outbox row completed",
    );
    await rescuer.stop();
    expect(await deliveredCount(db, `tenant_id = '${tenant}'`)).toBe(60);

    const delivered = await query<{ event_id: string }>(
      db,
      sql`select distinct event_id from crash_deliveries`,
    );
    expect(new Set(delivered.map((d) => d.event_id))).toEqual(new Set(written.map((w) => w.event.id)));
    // The victim's claims were taken over; completing them now with its old lease does nothing.
    expect(await completeBatch(db, outboxQueue, "victim", claimed, new Date())).toEqual([]);
    expect(await deliveredCount(db, `tenant_id = '${tenant}'`)).toBe(60);
    const rescued = await query<{ n: number }>(
      db,
      sql`select count(*)::int as n from crash_deliveries where worker = 'rescuer'`,
    );
    expect(rescued[0]!.n).toBeGreaterThan(0);
  }, 60_000);

  it("loses nothing of what its writer handed to it: the leases run out and another worker delivers", async () => {
    const db = t.database.db;
    await db.execute(sql`truncate crash_deliveries`);
    const tenant = await makeTenant(db);
    await createSubscription(db, tenant, {
      name: "crash",
      eventTypes: ["crash.*"],
      sink: { type: "handler", name: "crash" },
    });
    const victim = spawnProcess(process.execPath, [script], {
      // Its lease outlasts the test's wait before the kill, so its own reaper never takes back what it holds.
      env: cleanEnv({
        CRASH_DB_URL: t.url!,
        LEASE_MS: "6000",
        HANG_AFTER: "3",
        WRITE_TENANT: tenant,
        WRITE_COUNT: "40",
      }),
    });
    await victim.waitFor(/\{"claimed":/);
    // Killed mid-run: its handlers hang on what they hold, and its writer has gone on past them.
    await eventually(
      async () =>
        (await query<{ n: number }>(db, sql`select count(*)::int as n from crash_deliveries`))[0]!.n >= 3 &&
        (await count(db, "events", `tenant_id = '${tenant}' and event_type = 'crash.test'`)) >= 10,
    );
    victim.child.kill("SIGKILL");
    expect(await victim.exited).toBeNull();
    // A statement the victim had sent still runs to its commit after the process is gone: wait until no
    // statement of another session is running in this database, or a late write would escape the count below.
    await eventually(
      async () =>
        (
          await query<{ n: number }>(
            db,
            sql`select count(*)::int as n from pg_stat_activity
              where datname = current_database() and backend_type = 'client backend' and state <> 'idle'
                and pid <> pg_backend_pid()`,
          )
        )[0]!.n === 0,
    );
    // Everything the victim wrote is in the log; what it held when it died was handed over, never claimed.
    const written = await query<{ id: string }>(
      db,
      sql`select id from events where tenant_id = ${tenant} and event_type = 'crash.test'`,
    );
    expect(written.length).toBeGreaterThanOrEqual(10);
    const held = await query<{ id: number; attempts: number }>(
      db,
      sql`select id::int as id, attempts from outbox where tenant_id = ${tenant} and status = 'processing'
        and locked_by = 'victim'`,
    );
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((r) => r.attempts === 1)).toBe(true);

    const rescuer = await startRescuer();
    await eventually(
      async () => (await count(db, "outbox", `tenant_id = '${tenant}'`)) === 0,
      20_000,
      "every outbox row completed",
    );
    await rescuer.stop();
    expect(await deliveredCount(db, `tenant_id = '${tenant}'`)).toBe(written.length);
    const delivered = await query<{ event_id: string }>(
      db,
      sql`select distinct event_id from crash_deliveries`,
    );
    expect(new Set(delivered.map((d) => d.event_id))).toEqual(new Set(written.map((w) => w.id)));
    // The victim's late completion of what it held is refused, and counts nothing.
    expect(await completeBatch(db, outboxQueue, "victim", held, new Date())).toEqual([]);
    expect(await deliveredCount(db, `tenant_id = '${tenant}'`)).toBe(written.length);
  }, 60_000);
});
