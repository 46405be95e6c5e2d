import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Db, query } from "../src/db/client.js";
import { createProcessor } from "../src/ingest/processor.js";
import { receiveDelivery } from "../src/ingest/receive.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { registerMessage } from "../src/messages/register.js";
import { createSource } from "../src/tenancy/sources.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { cleanEnv, spawnProcess } from "./support/process.js";
import { sampleBatch } from "./support/sendgrid.js";
import { eventually } from "./support/wait.js";

const script = fileURLToPath(new URL("./support/ingest-worker.mjs", import.meta.url));

/** The same archived deliveries, for every database of this test: 120 deliveries, overlapping. */
function deliveries(): string[] {
  const base = sampleBatch();
  return Array.from({ length: 120 }, (_, i) =>
    JSON.stringify(
      Array.from({ length: 15 }, (_, j) => {
        const n = (i * 7 + j) % 400; // overlapping windows: most events arrive more than once
        const e = base[n % base.length]!;
        return {
          ...e,
          email: `user${n % 40}@example.com`,
          sg_event_id: `e-${n}`,
          timestamp: 1763800000 + n,
          sg_message_id: `MSG${n % 40}.filter-${n}`,
        };
      }),
    ),
  );
}

async function seed(db: Db) {
  const tenantId = await makeTenant(db, "crash");
  const source = await createSource(db, tenantId, { provider: "sendgrid" });
  for (let m = 0; m < 40; m++) {
    if (m % 5 === 0) continue; // some messages are never registered: their events stay orphans
    await registerMessage(db, tenantId, {
      channel: "email",
      provider: "sendgrid",
      to: `user${m}@example.com`,
      providerMessageId: `MSG${m}`,
    });
  }
  for (const body of deliveries())
    await receiveDelivery(db, source, {
      headers: {},
      body: Buffer.from(body),
      remoteIp: undefined,
      publicUrl: `http://localhost/api/v1/webhooks/sendgrid/${source.id}`,
    });
  return source.id;
}

/** Everything processing produced, by natural keys (ids differ between databases). */
async function snapshot(db: Db) {
  return {
    events: await query(
      db,
      sql`select e.dedupe_key, e.type, e.event_at, m.to_address from message_events e
      left join outbound_messages m on m.id = e.outbound_message_id order by 1`,
    ),
    statuses: await query(db, sql`select to_address, status, status_at from outbound_messages order by 1`),
    suppressions: await query(
      db,
      sql`select address, reason, group_id from communication_suppressions order by 1, 2, 3`,
    ),
    // A webhook's log event is its message event's (same id): the log as provider event ids and types.
    log: await query(
      db,
      sql`select m.provider_event_id as key, e.event_type, e.payload is null as no_copy
        from events e join message_events m on m.id = e.id and m.event_at = e.ts order by 1`,
    ),
    deliveries: await query(
      db,
      sql`select status, count(*)::int from webhook_deliveries group by 1 order by 1`,
    ),
  };
}

const drained = async (db: Db) =>
  (await count(db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0;

describe.skipIf(!hasPostgres())("a killed webhook processor", () => {
  let killed: TestDatabase;
  let calm: TestDatabase;
  beforeAll(async () => {
    [killed, calm] = await Promise.all([createTestDatabase("postgres"), createTestDatabase("postgres")]);
  });
  afterAll(async () => {
    await killed?.drop();
    await calm?.drop();
  });

  it("leaves, after a restart, the same tables as an uninterrupted run; reprocessing changes nothing", async () => {
    const sourceId = await seed(killed.database.db);
    await seed(calm.database.db);

    const victim = spawnProcess(process.execPath, [script], {
      env: cleanEnv({ CRASH_DB_URL: killed.url!, LEASE_MS: "1500" }),
    });
    await eventually(
      async () => (await count(killed.database.db, "webhook_deliveries", "status = 'completed'")) >= 20,
      20_000,
      "a third processed",
    );
    victim.child.kill("SIGKILL");
    expect(await victim.exited).toBeNull();
    expect(await drained(killed.database.db)).toBe(false);

    for (const [t, id] of [
      [killed, "rescuer"],
      [calm, "calm"],
    ] as const) {
      const worker = createProcessor({
        db: t.database.db,
        listen: t.database.listen,
        leaseMs: 1500,
        pollIntervalMs: 100,
        workerId: id,
      });
      await worker.start();
      await eventually(() => drained(t.database.db), 30_000, `${id} drained`);
      await worker.stop();
    }
    const expected = await snapshot(calm.database.db);
    expect(expected.events.length).toBeGreaterThan(300);
    expect(await snapshot(killed.database.db)).toEqual(expected);

    // Reprocessing the whole archive (twice) stores nothing new and changes nothing.
    for (let run = 0; run < 2; run++) {
      const result = await reprocess(killed.database.db, { sourceId });
      expect(result).toEqual({ deliveries: 120, stored: 0, failed: [] });
    }
    expect(await snapshot(killed.database.db)).toEqual(expected);
  }, 90_000);
});
