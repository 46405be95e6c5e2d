import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { migrate, migrateDown, readMigrations } from "../src/db/migrate.js";
import { projectRollups } from "../src/events/rollups.js";
import { eventStats } from "../src/events/stats.js";
import { eventTotals } from "../src/events/totals.js";
import { writeEvents } from "../src/events/write.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";

/**
 * Migration 0037's upgrade path: rollups as a Herald before it counted them (hourly and daily counts, no event
 * times, no monthly rows) are given their monthly counts and each hour's first and last event time from the
 * log, so totals, time ranges and stats answer as before, and the projection goes on from the checkpoint.
 */
for (const backend of backends()) {
  describe(`rollups counted before migration 0037, on ${backend}`, () => {
    let t: TestDatabase;
    let tenantId: string;
    const times = [
      "2026-10-30T23:59:59.123Z",
      "2026-10-31T10:00:00.000Z",
      "2026-11-02T08:15:00.000Z",
      "2026-11-02T08:45:30.500Z",
      "2026-11-30T23:00:00.001Z",
      "2026-12-01T00:00:00.000Z",
    ];

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      const db = t.database.db;
      const [tenant] = await query<{ id: string }>(
        db,
        sql`insert into tenants (name) values ('r') returning id`,
      );
      tenantId = tenant!.id;
      const tags = readMigrations().map((m) => m.tag);
      await migrateDown(db, tags.length - tags.indexOf("0037_rollup_bounds_monthly"));
      await writeEvents(
        db,
        times.map((ts, i) => ({
          tenantId,
          eventType: i % 2 ? "order.placed" : "message.sent",
          source: "system" as const,
          timestamp: new Date(ts),
        })),
      );
      // What the projection before 0037 did with them.
      await query(
        db,
        sql`with batch as (select * from events), counted as (
            insert into event_rollups (tenant_id, hour, event_type, source, count)
            select tenant_id, date_trunc('hour', ts, 'UTC'), event_type, source, count(*) from batch group by 1, 2, 3, 4
          ), daily as (
            insert into event_rollups_daily (tenant_id, day, event_type, source, count)
            select tenant_id, date_trunc('day', ts, 'UTC'), event_type, source, count(*) from batch group by 1, 2, 3, 4
          )
          update event_rollup_checkpoint set (transaction_id, position) =
            (select transaction_id, position from batch order by transaction_id desc, position desc limit 1)`,
      );
      await migrate(db);
    });

    afterAll(async () => {
      await t?.drop();
    });

    it("fills the monthly counts and each hour's first and last event time", async () => {
      const db = t.database.db;
      const monthly = await query<{ month: string; n: number }>(
        db,
        sql`select to_char(month at time zone 'UTC', 'YYYY-MM') as month, sum(count)::int as n
          from event_rollups_monthly group by 1 order by 1`,
      );
      expect(monthly).toEqual([
        { month: "2026-10", n: 2 },
        { month: "2026-11", n: 3 },
        { month: "2026-12", n: 1 },
      ]);
      const [bounds] = await query<{ missing: number; wrong: number }>(
        db,
        sql`select count(*) filter (where r.first_at is null or r.last_at is null)::int as missing,
            count(*) filter (where r.first_at <> (select min(e.ts) from events e where e.tenant_id = r.tenant_id
              and e.event_type = r.event_type and date_trunc('hour', e.ts, 'UTC') = r.hour)
              or r.last_at <> (select max(e.ts) from events e where e.tenant_id = r.tenant_id
              and e.event_type = r.event_type and date_trunc('hour', e.ts, 'UTC') = r.hour))::int as wrong
          from event_rollups r`,
      );
      expect(bounds).toEqual({ missing: 0, wrong: 0 });
    });

    it("answers totals, time ranges and stats as before, and the projection goes on from its checkpoint", async () => {
      const db = t.database.db;
      expect(await eventTotals(db, { tenantId })).toMatchObject({
        total: 6,
        timeRange: { start: times[0], end: times[5] },
      });
      expect(
        await eventTotals(db, {
          tenantId,
          type: "message.*",
          start: new Date("2026-10-31T00:00:00Z"),
          end: new Date("2026-12-01T00:00:00Z"),
        }),
      ).toMatchObject({ total: 2, timeRange: { start: times[2], end: times[4] } });
      const stats = await eventStats(db, { tenantId }, ["type"]);
      expect(stats.buckets).toEqual([
        { key: "message.sent", count: 3 },
        { key: "order.placed", count: 3 },
      ]);
      await writeEvents(db, [
        {
          tenantId,
          eventType: "message.sent",
          source: "system",
          timestamp: new Date("2026-11-02T08:59:59.999Z"),
        },
      ]);
      while ((await projectRollups(db, 100)) > 0) {}
      const [hour] = await query<{ count: number; first_at: string; last_at: string }>(
        db,
        sql`select count::int, to_char(first_at at time zone 'UTC', 'HH24:MI:SS.MS') as first_at,
            to_char(last_at at time zone 'UTC', 'HH24:MI:SS.MS') as last_at
          from event_rollups where hour = '2026-11-02T08:00:00Z' and event_type = 'message.sent'`,
      );
      expect(hour).toEqual({ count: 2, first_at: "08:15:00.000", last_at: "08:59:59.999" });
      expect((await eventTotals(db, { tenantId, type: "message.sent" })).total).toBe(4);
    });
  });
}
