import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSubscription } from "../src/bus/subscriptions.js";
import { type Db, openDatabase, query } from "../src/db/client.js";
import { writeEvent, writeEvents } from "../src/events/write.js";
import { backends, createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { eventually } from "./support/wait.js";

for (const backend of backends()) {
  describe(`event log writer on ${backend}`, () => {
    let t: TestDatabase;
    let db: Db;
    let tenant: string;
    let other: string;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      db = t.database.db;
      tenant = await makeTenant(db);
      other = await makeTenant(db);
    });
    afterAll(() => t?.drop());

    it("stores an event with all its fields and returns it", async () => {
      const happened = new Date("2026-11-02T10:00:00.123Z");
      const { event, duplicate } = await writeEvent(db, {
        tenantId: tenant,
        eventType: "contact.created",
        source: "manual",
        payload: { name: "Ada" },
        metadata: { ip: "1.2.3.4" },
        timestamp: happened,
        contactId: "c-1",
        sessionId: "s-1",
        correlationId: "corr-1",
        causationId: "cause-1",
        sequenceNumber: 7,
        schemaVersion: 2,
      });
      expect(duplicate).toBe(false);
      expect(event).toMatchObject({
        event_type: "contact.created",
        source: "manual",
        payload: { name: "Ada" },
        metadata: { ip: "1.2.3.4" },
        timestamp: "2026-11-02T10:00:00.123Z",
        contact_id: "c-1",
        session_id: "s-1",
        correlation_id: "corr-1",
        causation_id: "cause-1",
        sequence_number: 7,
        schema_version: 2,
      });
      expect(event.id[14]).toBe("7");
      expect(Date.parse(event.created_at)).toBeGreaterThan(happened.getTime());
      expect(Number(event.transaction_id)).toBeGreaterThan(0);
    });

    it("stores awkward text, mixed optional fields and payload nulls exactly as given", async () => {
      const awkward = ['a"b\\c', "NULL", "{x,y}", " spaced ", "日本語 🎉", "", "line\nbreak"];
      const results = await writeEvents(
        db,
        awkward.map((text, i) => ({
          tenantId: tenant,
          eventType: "contact.noted",
          source: "system" as const,
          payload: { text, nothing: null, nested: { metadata: {}, list: [null, 1] } },
          contactId: text,
          ...(i % 2 === 0 ? { correlationId: text, metadata: { i } } : { sessionId: text }),
          eventKey: `awkward-${i}-${text}`,
        })),
      );
      const stored = await query<{
        contact_id: string;
        correlation_id: string | null;
        session_id: string | null;
      }>(
        db,
        sql`select contact_id, correlation_id, session_id, payload, metadata, event_key from events
          where id in (select (jsonb_array_elements_text(${JSON.stringify(results.map((r) => r.event.id))}::jsonb))::uuid)
          order by position`,
      );
      expect(stored).toEqual(
        awkward.map((text, i) => ({
          contact_id: text,
          correlation_id: i % 2 === 0 ? text : null,
          session_id: i % 2 === 0 ? null : text,
          payload: { text, nothing: null, nested: { metadata: {}, list: [null, 1] } },
          metadata: i % 2 === 0 ? { i } : {},
          event_key: `awkward-${i}-${text}`,
        })),
      );
    });

    it("matches subscription patterns: exact types, '*', and prefixes ending in '.*'", async () => {
      const cases: [string[], string, boolean][] = [
        [["message.delivered"], "message.delivered", true],
        [["message.delivered"], "message.opened", false],
        [["*"], "anything.at.all", true],
        [["message.*"], "message.delivered", true],
        [["message.*"], "message.link.clicked", true],
        [["message.*"], "message", false],
        [["message.*"], "messages.delivered", false],
        [["contact.*", "message.bounce"], "message.bounce", true],
        [[], "message.bounce", false],
      ];
      for (const [patterns, type, expected] of cases) {
        const [row] = await query<{ matches: boolean }>(
          db,
          sql`select herald_event_type_matches(${`{${patterns.join(",")}}`}::text[], ${type}) as matches`,
        );
        expect({ patterns, type, matches: row!.matches }).toEqual({ patterns, type, matches: expected });
      }
    });

    it("is idempotent on tenant + event_key: a duplicate returns the stored event", async () => {
      const first = await writeEvent(db, {
        tenantId: tenant,
        eventType: "a.b",
        source: "system",
        eventKey: "k-1",
        payload: { v: 1 },
      });
      const again = await writeEvent(db, {
        tenantId: tenant,
        eventType: "a.b",
        source: "system",
        eventKey: "k-1",
        payload: { v: 2 },
      });
      expect(again.duplicate).toBe(true);
      expect(again.event.id).toBe(first.event.id);
      expect(again.event.payload).toEqual({ v: 1 });
      expect(await count(db, "events", "event_key = 'k-1'")).toBe(1);
      // Another tenant's key space is its own.
      const theirs = await writeEvent(db, {
        tenantId: other,
        eventType: "a.b",
        source: "system",
        eventKey: "k-1",
      });
      expect(theirs.duplicate).toBe(false);
    });

    it("handles duplicates inside one batch and keeps the input order", async () => {
      const results = await writeEvents(db, [
        { tenantId: tenant, eventType: "batch.one", source: "system", eventKey: "b-1" },
        { tenantId: tenant, eventType: "batch.two", source: "system" },
        { tenantId: tenant, eventType: "batch.one", source: "system", eventKey: "b-1" },
      ]);
      expect(results.map((r) => r.duplicate)).toEqual([false, false, true]);
      // The duplicate is read back from the log: what the writer returned for the first must match it.
      expect(results[2]!.event).toEqual(results[0]!.event);
      expect(results[1]!.event.event_type).toBe("batch.two");
      expect(results[1]!.event.position).toBeGreaterThan(results[0]!.event.position);
    });

    it("dedupes across a month boundary (the key table is not partitioned)", async () => {
      const key = "cross-month";
      const jan = await writeEvent(db, {
        tenantId: tenant,
        eventType: "x.y",
        source: "webhook",
        eventKey: key,
        timestamp: new Date("2024-01-31T23:59:59.999Z"),
      });
      const feb = await writeEvent(db, {
        tenantId: tenant,
        eventType: "x.y",
        source: "webhook",
        eventKey: key,
        timestamp: new Date("2024-02-01T00:00:00.000Z"),
      });
      expect(feb.duplicate).toBe(true);
      expect(feb.event.id).toBe(jan.event.id);
      expect(await count(db, "events", `event_key = '${key}'`)).toBe(1);
      // The old month got its partition on demand.
      expect(await count(db, "pg_class", "relname = 'events_2024_01'")).toBe(1);
    });

    it("queues one outbox row per matching subscription, in the same transaction", async () => {
      const all = await createSubscription(db, tenant, {
        name: "all-messages",
        eventTypes: ["message.*"],
        sink: { type: "handler", name: "h1" },
      });
      const exact = await createSubscription(db, tenant, {
        name: "delivered-only",
        eventTypes: ["message.delivered"],
        sink: { type: "handler", name: "h2" },
        ordered: true,
      });
      await createSubscription(db, other, {
        name: "theirs",
        eventTypes: ["*"],
        sink: { type: "handler", name: "h3" },
      });
      const [delivered, opened, unrelated] = await writeEvents(db, [
        {
          tenantId: tenant,
          eventType: "message.delivered",
          source: "webhook",
          messageId: "01a20000-0000-7000-8000-0000000000aa",
        },
        { tenantId: tenant, eventType: "message.open", source: "webhook", contactId: "c-9" },
        { tenantId: tenant, eventType: "messages.delivered", source: "webhook" },
      ]);
      const rows = await query<{ subscription_id: string; event_id: string; ordering_key: string | null }>(
        db,
        sql`select subscription_id, event_id, ordering_key from outbox where event_id in (${delivered!.event.id}, ${opened!.event.id}, ${unrelated!.event.id}) order by id`,
      );
      expect(rows).toEqual([
        { subscription_id: all.id, event_id: delivered!.event.id, ordering_key: null },
        {
          subscription_id: exact.id,
          event_id: delivered!.event.id,
          ordering_key: "01a20000-0000-7000-8000-0000000000aa",
        },
        { subscription_id: all.id, event_id: opened!.event.id, ordering_key: null },
      ]);
    });

    it("writes nothing when the caller's transaction rolls back", async () => {
      await createSubscription(db, tenant, {
        name: "rollback-watch",
        eventTypes: ["rollback.*"],
        sink: { type: "handler", name: "h" },
      });
      await expect(
        db.transaction(async (tx) => {
          await writeEvent(tx, {
            tenantId: tenant,
            eventType: "rollback.test",
            source: "system",
            eventKey: "rb-1",
          });
          throw new Error("caller failed");
        }),
      ).rejects.toThrow("caller failed");
      expect(await count(db, "events", "event_type = 'rollback.test'")).toBe(0);
      expect(await count(db, "event_keys", "event_key = 'rb-1'")).toBe(0);
      expect(await count(db, "outbox", "event_type = 'rollback.test'")).toBe(0);
    });
  });
}

describe.skipIf(!hasPostgres())("event log writer under concurrency (PostgreSQL)", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("postgres");
  });
  afterAll(() => t?.drop());

  it("stores one event when the same key is written by concurrent transactions", async () => {
    const tenant = await makeTenant(t.database.db);
    const connections = await Promise.all([0, 1, 2, 3].map(() => openDatabase({ url: t.url })));
    const lockWaiters = async () =>
      (
        await query<{ n: number }>(
          t.database.db,
          sql`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`,
        )
      )[0]!.n;
    try {
      const results = await Promise.all(
        connections.map((c) =>
          c.db.transaction(async (tx) => {
            const r = await writeEvent(tx, {
              tenantId: tenant,
              eventType: "race.won",
              source: "system",
              eventKey: "race",
            });
            // The first writer holds its transaction open until the three others wait on its key, so the
            // race is real: each of them decides while the winner's key is written but not committed.
            if (!r.duplicate)
              await eventually(async () => (await lockWaiters()) >= 3, 10_000, "three writers waiting");
            return r;
          }),
        ),
      );
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(results.map((r) => r.event.id)).size).toBe(1);
      expect(await count(t.database.db, "events", "event_key = 'race'")).toBe(1);
    } finally {
      await Promise.all(connections.map((c) => c.close()));
    }
  });
});
