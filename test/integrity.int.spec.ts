import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkIntegrity } from "../src/bus/integrity.js";
import { createSubscription } from "../src/bus/subscriptions.js";
import { writeEvents } from "../src/events/write.js";
import { createTestDatabase, type TestDatabase } from "./support/databases.js";
import { makeTenant } from "./support/fixtures.js";

describe("integrity check", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("pglite");
  });
  afterAll(() => t?.drop());

  it("is clean after normal writes and names each kind of damage", async () => {
    const db = t.database.db;
    const tenant = await makeTenant(db);
    await createSubscription(db, tenant, {
      name: "s",
      eventTypes: ["*"],
      sink: { type: "handler", name: "h" },
    });
    const [first, second] = await writeEvents(db, [
      { tenantId: tenant, eventType: "a.b", source: "system", eventKey: "k1" },
      { tenantId: tenant, eventType: "a.b", source: "system" },
    ]);
    expect((await checkIntegrity(db, tenant)).ok).toBe(true);

    // Damage: a second event with the same key written around the key table, a reused position, an orphan outbox row.
    await db.execute(sql`insert into events (tenant_id, event_type, source, event_key, position)
      values (${tenant}, 'a.b', 'system', 'k1', ${second!.event.position})`);
    await db.execute(sql`delete from events where id = ${first!.event.id}`);
    await db.execute(
      sql`insert into events (tenant_id, event_type, source, event_key) values (${tenant}, 'a.b', 'system', 'k1')`,
    );
    // An event stamped with a transaction id this server has not reached (restored from a busier cluster):
    // readers going below the snapshot horizon would never get to it.
    await db.execute(sql`insert into events (tenant_id, event_type, source, transaction_id)
      values (${tenant}, 'a.b', 'system', ((pg_current_xact_id()::text::bigint + 1000000)::text)::xid8)`);
    const report = await checkIntegrity(db, tenant);
    const failing = Object.fromEntries(
      report.checks.filter((c) => c.count > 0).map((c) => [c.name, c.count]),
    );
    expect(report.ok).toBe(false);
    expect(failing).toEqual({
      duplicate_event_keys: 1,
      events_missing_key_row: 2,
      duplicate_positions: 1,
      positions_ahead_of_commit_order: 1,
      outbox_without_event: 1,
    });
  });
});
