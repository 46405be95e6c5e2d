import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, type Db, openDatabase, query } from "../src/db/client.js";
import type { EventSource } from "../src/domain/vocabularies.js";
import { countPlan, rollupPieces, splitByHour } from "../src/events/countPlan.js";
import type { EventFilter } from "../src/events/filter.js";
import { projectRollups, RollupProjection, rebuildRollups } from "../src/events/rollups.js";
import { eventStats, type StatsDimension } from "../src/events/stats.js";
import { countEvents, eventTotals } from "../src/events/totals.js";
import type { NewEvent } from "../src/events/types.js";
import { writeEvents } from "../src/events/write.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { makeTenant } from "./support/fixtures.js";
import { eventually } from "./support/wait.js";

/**
 * Totals, time ranges and stats come from the rollups plus the events after the projection's checkpoint:
 * they must equal a brute-force count however far the projection lags, once it catches up, and after a
 * rebuild. Every answer is checked against the events counted here in JS.
 */

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
// Holds the whole of November and crosses two month (and so partition) boundaries.
const origin = Date.parse("2026-10-27T00:00:00.000Z");
const spanMs = 40 * dayMs;
const types = [
  "message.sent",
  "message.delivered",
  "message.bounced",
  "messages.archived",
  "message_x.y",
  "contact.created",
  "order.placed",
];
const sources: EventSource[] = ["system", "webhook", "manual"];
const patterns = [
  undefined,
  "*",
  "message.*",
  "messages.*",
  "message.sent",
  "contact.created",
  "nothing.here",
];
const dimensions: StatsDimension[][] = [["type"], ["source"], ["day"], ["hour"], ["type", "day"]];

/** A seeded generator, so a failure can be run again as it was. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Known {
  tenantId: string;
  eventType: string;
  source: EventSource;
  ms: number;
  contactId: string | null;
}

function matches(e: Known, f: EventFilter) {
  if (e.tenantId !== f.tenantId) return false;
  if (f.type !== undefined && f.type !== "*") {
    if (f.type.endsWith(".*") ? !e.eventType.startsWith(f.type.slice(0, -1)) : e.eventType !== f.type)
      return false;
  }
  if (f.source !== undefined && e.source !== f.source) return false;
  if (f.contactId !== undefined && e.contactId !== f.contactId) return false;
  if (f.start !== undefined && e.ms < f.start.getTime()) return false;
  if (f.end !== undefined && e.ms >= f.end.getTime()) return false;
  return true;
}

const iso = (ms: number) => new Date(ms).toISOString();
const keyOf = (d: StatsDimension, e: Known) =>
  d === "type"
    ? e.eventType
    : d === "source"
      ? e.source
      : iso(Math.floor(e.ms / (d === "day" ? dayMs : hourMs)) * (d === "day" ? dayMs : hourMs));

for (const backend of backends()) {
  describe(`event rollups on ${backend}`, () => {
    let t: TestDatabase;
    let db: Db;
    let tenant: string;
    let other: string;
    const known: Known[] = [];
    const next = random(20261206);
    const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      db = t.database.db;
      tenant = await makeTenant(db);
      other = await makeTenant(db);
    });
    afterAll(() => t?.drop());

    /** Write `n` random events (most of them the tenant's), in batches. */
    async function write(n: number) {
      const batch: NewEvent[] = [];
      for (let i = 0; i < n; i += 1) {
        const e: Known = {
          tenantId: next() < 0.85 ? tenant : other,
          eventType: pick(types),
          source: pick(sources),
          // Milliseconds matter: the edge hours are counted to the millisecond.
          ms: origin + Math.floor(next() * spanMs),
          contactId: next() < 0.1 ? pick(["c-1", "c-2"]) : null,
        };
        known.push(e);
        batch.push({
          tenantId: e.tenantId,
          eventType: e.eventType,
          source: e.source,
          timestamp: new Date(e.ms),
          contactId: e.contactId,
        });
      }
      for (let i = 0; i < batch.length; i += 500) await writeEvents(db, batch.slice(i, i + 500));
    }

    /** A random filter: type pattern, source, and bounds off the hour (sometimes none, sometimes one hour). */
    function randomFilter(): EventFilter {
      const at = () => new Date(origin - dayMs + Math.floor(next() * (spanMs + 2 * dayMs)));
      const roll = next();
      let start: Date | undefined;
      let end: Date | undefined;
      if (roll < 0.15) {
        // Inside one hour, or across one hour boundary.
        start = at();
        end = new Date(start.getTime() + Math.floor(next() * 1.5 * hourMs));
      } else if (roll < 0.25) {
        start = at();
      } else if (roll < 0.35) {
        end = at();
      } else if (roll < 0.9) {
        const [a, b] = [at(), at()].sort((x, y) => x.getTime() - y.getTime());
        start = a;
        end = b;
      }
      return {
        tenantId: tenant,
        type: pick(patterns),
        source: next() < 0.4 ? pick(sources) : undefined,
        start,
        end,
      };
    }

    async function expectExact(filter: EventFilter, withStats: boolean) {
      const expected = known.filter((e) => matches(e, filter));
      const times = expected.map((e) => e.ms);
      const totals = await eventTotals(db, filter);
      const what = JSON.stringify(filter);
      expect(totals.total, what).toBe(expected.length);
      expect(totals.timeRange, what).toEqual({
        start: times.length ? iso(Math.min(...times)) : null,
        end: times.length ? iso(Math.max(...times)) : null,
      });
      expect(totals.snapshot).toMatch(/^\d+:\d+:/);
      expect(await countEvents(db, filter), what).toBe(expected.length);
      if (!withStats) return;
      const groupBy = pick(dimensions);
      const counts = new Map<string, number>();
      for (const e of expected) {
        const key = groupBy.map((d) => keyOf(d, e)).join(",");
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const stats = await eventStats(db, filter, groupBy);
      expect(stats.total, `${what} by ${groupBy}`).toBe(expected.length);
      expect(
        stats.buckets.map((b) => [b.key, b.count]).sort(([a], [b]) => String(a).localeCompare(String(b))),
        `${what} by ${groupBy}`,
      ).toEqual([...counts].sort(([a], [b]) => a.localeCompare(b)));
      if (groupBy.length === 2)
        for (const b of stats.buckets) expect(Object.values(b.keys ?? {}).join(",")).toBe(b.key);
    }

    async function expectAllExact(rounds: number) {
      // The fixed cases first: no bounds, whole hours only, one partial hour, an empty range.
      const fixed: EventFilter[] = [
        { tenantId: tenant },
        { tenantId: tenant, type: "message.*" },
        { tenantId: tenant, start: new Date(origin + 2 * dayMs), end: new Date(origin + 3 * dayMs) },
        {
          tenantId: tenant,
          start: new Date(origin + 5 * hourMs + 1),
          end: new Date(origin + 5 * hourMs + 2),
        },
        { tenantId: tenant, start: new Date(origin + dayMs), end: new Date(origin) },
        { tenantId: tenant, source: "manual", end: new Date(origin + 4 * dayMs + 1234) },
        // A whole month in the middle (the monthly rollups), days and hours around it.
        {
          tenantId: tenant,
          type: "message.*",
          start: new Date(origin + 3 * hourMs + 17),
          end: new Date(origin + 38 * dayMs + 5 * hourMs + 5),
        },
        // Beyond the rollups: counted through their own index.
        { tenantId: tenant, contactId: "c-1", type: "message.*" },
      ];
      for (const filter of fixed) await expectExact(filter, true);
      for (let i = 0; i < rounds; i += 1) await expectExact(randomFilter(), true);
    }

    /** The events the rollups count; the daily and monthly ones must count the same. */
    const rollupSum = async () => {
      const [row] = await query<{ hourly: number; daily: number; monthly: number }>(
        db,
        sql`select (select coalesce(sum(count), 0) from event_rollups)::float8 as hourly,
          (select coalesce(sum(count), 0) from event_rollups_daily)::float8 as daily,
          (select coalesce(sum(count), 0) from event_rollups_monthly)::float8 as monthly`,
      );
      expect(Number(row!.daily)).toBe(Number(row!.hourly));
      expect(Number(row!.monthly)).toBe(Number(row!.hourly));
      return Number(row!.hourly);
    };

    /**
     * Project until every known event is counted. The projection reads only transactions older than every
     * transaction running on the server, whatever its database: other suites' open transactions may hold it
     * back for a while (the totals stay exact meanwhile, which is the point).
     */
    const catchUp = () =>
      eventually(
        async () => {
          while ((await projectRollups(db, 1000)) > 0) {}
          return (await rollupSum()) === known.length;
        },
        60_000,
        "the projection to catch up",
      );

    it("splits a range into partial and whole hours", () => {
      const at = (s: string) => new Date(`2026-11-24T${s}Z`);
      expect(splitByHour(at("10:30:00.000"), at("13:15:00.000"))).toEqual({
        lead: { start: at("10:30:00.000"), end: at("11:00:00.000") },
        whole: { start: at("11:00:00.000"), end: at("13:00:00.000") },
        trail: { start: at("13:00:00.000"), end: at("13:15:00.000") },
      });
      expect(splitByHour(at("10:00:00.000"), at("12:00:00.000"))).toEqual({
        whole: { start: at("10:00:00.000"), end: at("12:00:00.000") },
      });
      expect(splitByHour(at("10:10:00.000"), at("10:50:00.000"))).toEqual({
        lead: { start: at("10:10:00.000"), end: at("10:50:00.000") },
      });
      expect(splitByHour(at("10:10:00.000"), at("11:50:00.000"))).toEqual({
        lead: { start: at("10:10:00.000"), end: at("11:50:00.000") },
      });
      expect(splitByHour(at("11:00:00.000"), at("10:00:00.000"))).toEqual({});
      expect(splitByHour(undefined, undefined)).toEqual({ whole: { start: undefined, end: undefined } });
    });

    it("counts an end that covers most of its hour as the whole hour less the rest", () => {
      const at = (s: string) => new Date(`2026-11-24T${s}Z`);
      const hour = (start: Date, end: Date) => ({
        table: "event_rollups",
        column: "hour",
        span: { start, end },
      });
      expect(countPlan(at("10:10:00.000"), at("13:15:00.000"))).toEqual({
        rollups: [hour(at("10:00:00.000"), at("11:00:00.000")), hour(at("11:00:00.000"), at("13:00:00.000"))],
        tail: { start: at("10:00:00.000"), end: at("13:00:00.000") },
        events: [
          { span: { start: at("10:00:00.000"), end: at("10:10:00.000") }, sign: -1 },
          { span: { start: at("13:00:00.000"), end: at("13:15:00.000") }, sign: 1 },
        ],
      });
      expect(countPlan(at("10:10:00.000"), at("10:50:00.000"))).toEqual({
        rollups: [],
        events: [{ span: { start: at("10:10:00.000"), end: at("10:50:00.000") }, sign: 1 }],
      });
    });

    it("answers whole months from the monthly rollups, the days around them from the daily ones, the hours around those from the hourly ones", () => {
      const at = (s: string) => new Date(`2026-11-${s}Z`);
      const hourly = (start?: Date, end?: Date) => ({
        table: "event_rollups",
        column: "hour",
        span: { start, end },
      });
      const daily = (start?: Date, end?: Date) => ({
        table: "event_rollups_daily",
        column: "day",
        span: { start, end },
      });
      const monthly = (start?: Date, end?: Date) => ({
        table: "event_rollups_monthly",
        column: "month",
        span: { start, end },
      });
      expect(rollupPieces({ start: at("24T10:00:00"), end: at("27T05:00:00") })).toEqual([
        hourly(at("24T10:00:00"), at("25T00:00:00")),
        daily(at("25T00:00:00"), at("27T00:00:00")),
        hourly(at("27T00:00:00"), at("27T05:00:00")),
      ]);
      expect(rollupPieces({ start: at("24T00:00:00"), end: at("26T00:00:00") })).toEqual([
        daily(at("24T00:00:00"), at("26T00:00:00")),
      ]);
      expect(rollupPieces({ start: at("24T10:00:00"), end: at("25T05:00:00") })).toEqual([
        hourly(at("24T10:00:00"), at("25T05:00:00")),
      ]);
      expect(rollupPieces({ end: at("25T05:00:00") })).toEqual([
        monthly(undefined, at("01T00:00:00")),
        daily(at("01T00:00:00"), at("25T00:00:00")),
        hourly(at("25T00:00:00"), at("25T05:00:00")),
      ]);
      expect(rollupPieces({})).toEqual([monthly(undefined, undefined)]);
      expect(rollupPieces({ start: at("24T10:00:00"), end: at("27T05:00:00") }, "hour")).toEqual([
        hourly(at("24T10:00:00"), at("27T05:00:00")),
      ]);
      // Whole months in the middle (UTC), across a year's end; by day, none.
      const span = { start: new Date("2026-10-30T22:00:00Z"), end: new Date("2027-02-02T01:00:00Z") };
      expect(rollupPieces(span)).toEqual([
        hourly(span.start, new Date("2026-10-31T00:00:00Z")),
        daily(new Date("2026-10-31T00:00:00Z"), new Date("2026-11-01T00:00:00Z")),
        monthly(new Date("2026-11-01T00:00:00Z"), new Date("2027-02-01T00:00:00Z")),
        daily(new Date("2027-02-01T00:00:00Z"), new Date("2027-02-02T00:00:00Z")),
        hourly(new Date("2027-02-02T00:00:00Z"), span.end),
      ]);
      expect(rollupPieces(span, "day")).toEqual([
        hourly(span.start, new Date("2026-10-31T00:00:00Z")),
        daily(new Date("2026-10-31T00:00:00Z"), new Date("2027-02-02T00:00:00Z")),
        hourly(new Date("2027-02-02T00:00:00Z"), span.end),
      ]);
      expect(
        rollupPieces({ start: new Date("2026-12-01T00:00:00Z"), end: new Date("2027-01-01T00:00:00Z") }),
      ).toEqual([monthly(new Date("2026-12-01T00:00:00Z"), new Date("2027-01-01T00:00:00Z"))]);
    });

    it("are exact before the projection has run at all", async () => {
      await write(1500);
      await expectAllExact(10);
    });

    it("are exact when caught up, and when events were written after the last projection", async () => {
      await catchUp();
      await expectAllExact(10);
      await write(1500);
      await expectAllExact(20);
    });

    it("are exact part way through the projection, and after it catches up", async () => {
      const before = await rollupSum();
      const read = await eventually(() => projectRollups(db, 700), 60_000, "a projection step");
      expect(read).toBeLessThanOrEqual(700);
      expect(await rollupSum()).toBe(before + read);
      expect(before + read).toBeLessThan(known.length);
      await expectAllExact(10);
      await catchUp();
      await expectAllExact(20);
    });

    it("are exact after a rebuild, which reports its progress", async () => {
      // What a rebuild starts with (no rollups, the checkpoint back at the start): exact, counted from the log.
      await db.execute(sql`delete from event_rollups`);
      await db.execute(sql`delete from event_rollups_daily`);
      await db.execute(sql`delete from event_rollups_monthly`);
      await db.execute(sql`update event_rollup_checkpoint set transaction_id = '0', position = 0`);
      await expectAllExact(5);
      await catchUp();
      // A stale rollup (as if a projection had gone wrong): the rebuild counts the log again.
      await db.execute(sql`update event_rollups set count = count + 5`);
      await db.execute(sql`update event_rollups_daily set count = count + 5`);
      await db.execute(sql`update event_rollups_monthly set count = count + 5`);
      const progress: [number, number][] = [];
      const { read } = await rebuildRollups(db, (done, total) => progress.push([done, total]), {
        batch: 1000,
      });
      expect(progress[0]).toEqual([0, known.length]);
      expect(progress.at(-1)).toEqual([read, known.length]);
      // The whole log, unless another suite's open transaction held the rebuild back; then it is caught up.
      if (read < known.length) await catchUp();
      expect(await rollupSum()).toBe(known.length);
      await expectAllExact(20);
      // Exact also while the rebuilt rollups lag again.
      await write(300);
      await expectAllExact(10);
    });

    it("the worker loop catches up with new events and stops", async () => {
      await write(200);
      const errors: unknown[] = [];
      const projection = new RollupProjection(db, { batch: 250, idleMs: 20, onError: (e) => errors.push(e) });
      projection.start();
      try {
        await eventually(
          async () => (await rollupSum()) === known.length,
          60_000,
          "the projection to catch up",
        );
      } finally {
        await projection.stop();
      }
      expect(errors).toEqual([]);
      await expectAllExact(5);
    });

    it("the worker loop reports a failed step, tries again, and stops while it waits", async () => {
      const errors: unknown[] = [];
      const failing = { execute: () => Promise.reject(new Error("database down")) } as unknown as Db;
      const projection = new RollupProjection(failing, { retryMs: 10, onError: (e) => errors.push(e) });
      projection.start();
      await eventually(() => errors.length >= 2, 5_000, "two failed steps");
      const stopping = performance.now();
      await projection.stop();
      expect(performance.now() - stopping).toBeLessThan(1000);
      expect(String(errors[0])).toContain("database down");
    });

    it.runIf(backend === "postgres")(
      "projectors running at once count each event once, and an open transaction's events wait for it",
      async () => {
        const second: Database = await openDatabase({ url: t.url! });
        try {
          // A transaction left open holds the projection back (its events commit later, with older times).
          let release!: () => void;
          const held = new Promise<void>((resolve) => {
            release = resolve;
          });
          let opened!: () => void;
          const open = new Promise<void>((resolve) => {
            opened = resolve;
          });
          const late: Known = {
            tenantId: tenant,
            eventType: "message.sent",
            source: "system",
            ms: origin + 3 * hourMs + 17,
            contactId: null,
          };
          const holder = second.db.transaction(async (tx) => {
            await writeEvents(tx, [
              {
                tenantId: tenant,
                eventType: late.eventType,
                source: late.source,
                timestamp: new Date(late.ms),
              },
            ]);
            opened();
            await held;
          });
          await open;
          await write(1000);
          const drain = async (on: Db) => {
            let total = 0;
            for (;;) {
              const read = await projectRollups(on, 97);
              total += read;
              if (read === 0) return total;
            }
          };
          // Both end at the open transaction: nothing committed after it is read before it commits.
          const [a, b] = await Promise.all([drain(db), drain(second.db)]);
          expect(a + b).toBe(0);
          expect(await rollupSum()).toBe(known.length - 1000);
          await expectAllExact(10);
          release();
          await holder;
          known.push(late);
          await expectAllExact(5);
          await eventually(
            async () => {
              await Promise.all([drain(db), drain(second.db)]);
              return (await rollupSum()) === known.length;
            },
            60_000,
            "the projectors to catch up",
          );
          await expectAllExact(10);
        } finally {
          await second.close();
        }
      },
    );
  });
}
