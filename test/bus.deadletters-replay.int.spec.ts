import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { retryDeadLetters } from "../src/bus/deadLetters.js";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { replayEvents } from "../src/bus/replay.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { createSubscription } from "../src/bus/subscriptions.js";
import { query } from "../src/db/client.js";
import { writeEvents } from "../src/events/write.js";
import { fast, useBusDatabase } from "./support/bus.js";
import { backends } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { delivered as deliveredCount } from "./support/rollups.js";
import { eventually } from "./support/wait.js";

/** Deliveries that failed for good (dead letters and their retry) and deliveries asked for again (replay). */
for (const backend of backends()) {
  describe(`event bus dead letters and replay on ${backend}`, () => {
    const bus = useBusDatabase(backend);

    it("dead-letters a poison event with its error, leaves the others alone, and retries it once fixed", async () => {
      const { db } = bus;
      const tenant = await makeTenant(db);
      const sub = await createSubscription(db, tenant, {
        name: "poison",
        eventTypes: ["job.*"],
        sink: { type: "handler", name: "jobs" },
        maxAttempts: 3,
      });
      const handlers = new HandlerRegistry();
      const delivered: string[] = [];
      let fixed = false;
      handlers.register("jobs", (event) => {
        if (event.payload.poison && !fixed) throw new Error(`cannot handle ${event.payload.n}`);
        delivered.push(String(event.payload.n));
      });
      const worker = await bus.start(createDispatcher({ db, listen: bus.listen, handlers, ...fast }));
      const dead: string[] = [];
      worker.on("job:dead", (_row, error) => dead.push(error));
      await writeEvents(db, [
        { tenantId: tenant, eventType: "job.run", source: "system", payload: { n: 1 } },
        { tenantId: tenant, eventType: "job.run", source: "system", payload: { n: 2, poison: true } },
        { tenantId: tenant, eventType: "job.run", source: "system", payload: { n: 3 } },
      ]);
      await eventually(() => dead.length === 1, 10_000, "a dead letter");
      expect(delivered.sort()).toEqual(["1", "3"]);
      const [letter] = await query<{ attempts: number; last_error: string; event_type: string }>(
        db,
        sql`select attempts, last_error, event_type from dead_letters where subscription_id = ${sub.id}`,
      );
      expect(letter).toEqual({ attempts: 3, last_error: "Error: cannot handle 2", event_type: "job.run" });

      fixed = true;
      expect(await retryDeadLetters(db, tenant, { subscriptionId: sub.id })).toBe(1);
      await eventually(() => delivered.includes("2"), 10_000, "the retried delivery");
      // Once every row of the subscription is acknowledged — deleted and counted, the retried dead row too —
      // none can be delivered again.
      await eventually(
        async () => (await count(db, "outbox", `subscription_id = '${sub.id}'`)) === 0,
        10_000,
        "the retried delivery acknowledged",
      );
      expect(delivered.filter((n) => n === "2")).toHaveLength(1);
      expect(await deliveredCount(db, `subscription_id = '${sub.id}'`)).toBe(3);
      // The dead letter stays as history, marked retried, still naming its (now deleted) outbox row.
      expect(
        await count(
          db,
          "dead_letters",
          `subscription_id = '${sub.id}' and retried_at is not null and outbox_id > 0`,
        ),
      ).toBe(1);
      expect(await retryDeadLetters(db, tenant, { subscriptionId: sub.id })).toBe(0);
      await worker.stop();
    });

    it("replays by type, date range and correlation id, in log order", async () => {
      const { db } = bus;
      const tenant = await makeTenant(db);
      const sub = await createSubscription(db, tenant, {
        name: "replay",
        eventTypes: ["r.*"],
        sink: { type: "handler", name: "replayed" },
      });
      await writeEvents(db, [
        {
          tenantId: tenant,
          eventType: "r.a",
          source: "system",
          timestamp: new Date("2026-10-01T10:00:00Z"),
          correlationId: "x",
        },
        {
          tenantId: tenant,
          eventType: "r.b",
          source: "system",
          timestamp: new Date("2026-10-02T10:00:00Z"),
          correlationId: "x",
        },
        {
          tenantId: tenant,
          eventType: "r.a",
          source: "system",
          timestamp: new Date("2026-10-03T10:00:00Z"),
          correlationId: "y",
        },
        {
          tenantId: tenant,
          eventType: "other",
          source: "system",
          timestamp: new Date("2026-10-03T10:00:00Z"),
          correlationId: "x",
        },
      ]);
      // As if delivered already: a delivered row is gone from the outbox.
      await db.execute(sql`delete from outbox where subscription_id = ${sub.id}`);
      const base = { tenantId: tenant, subscriptionId: sub.id };
      expect((await replayEvents(db, { ...base })).events).toBe(3);
      expect((await replayEvents(db, { ...base, eventTypes: ["r.a"] })).events).toBe(2);
      expect((await replayEvents(db, { ...base, correlationId: "x" })).events).toBe(2);
      const ranged = await replayEvents(db, {
        ...base,
        start: new Date("2026-10-02T00:00:00Z"),
        end: new Date("2026-10-03T00:00:00Z"),
      });
      expect(ranged.events).toBe(1);
      // Another tenant cannot replay into this subscription.
      expect((await replayEvents(db, { ...base, tenantId: await makeTenant(db) })).events).toBe(0);

      const handlers = new HandlerRegistry();
      const seen: string[] = [];
      handlers.register("replayed", (event) => {
        seen.push(event.event_type);
      });
      const worker = await bus.start(createDispatcher({ db, listen: bus.listen, handlers, ...fast }));
      await eventually(() => seen.length === 8, 10_000, "replayed deliveries");
      // Acknowledgements are written in batches, shortly after the handler returns.
      await eventually(
        async () => (await deliveredCount(db, `subscription_id = '${sub.id}'`)) === 8,
        5_000,
        "replayed deliveries completed",
      );
      expect(await count(db, "outbox", `subscription_id = '${sub.id}'`)).toBe(0);
      await worker.stop();
    });
  });
}
