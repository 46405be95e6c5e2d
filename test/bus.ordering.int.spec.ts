import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { createSubscription } from "../src/bus/subscriptions.js";
import { writeEvents } from "../src/events/write.js";
import { fast, useBusDatabase } from "./support/bus.js";
import { backends } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { eventually, sleep } from "./support/wait.js";

/** Ordered subscriptions: one key's events in order, a failing key blocking only itself, no poll between. */
for (const backend of backends()) {
  describe(`event bus ordering on ${backend}`, () => {
    const bus = useBusDatabase(backend);

    it("keeps per-key order on ordered subscriptions with concurrency, and a failing key blocks only itself", async () => {
      const { db } = bus;
      const tenant = await makeTenant(db);
      const ordered = await createSubscription(db, tenant, {
        name: "ordered",
        eventTypes: ["seq.*"],
        sink: { type: "handler", name: "seq" },
        ordered: true,
        maxAttempts: 10_000, // the blocked key must still be failing, not dead, when the others are done
      });
      const handlers = new HandlerRegistry();
      const byKey = new Map<string, number[]>();
      let blockedFailures = 0;
      handlers.register("seq", async (event) => {
        const key = event.contact_id!;
        if (key === "blocked") {
          blockedFailures += 1;
          throw new Error("blocked key keeps failing");
        }
        // Jitter, not a wait: handlers of different keys finish out of order, as they do behind real sinks,
        // which is what per-key order must survive. At most 5 ms per event.
        await sleep(Math.random() * 5);
        byKey.set(key, [...(byKey.get(key) ?? []), Number(event.payload.n)]);
      });
      const worker = await bus.start(
        createDispatcher({ db, listen: bus.listen, handlers, concurrency: 8, batchSize: 50, ...fast }),
      );
      const keys = ["a", "b", "c", "d", "blocked"];
      const events = [];
      for (let n = 0; n < 20; n++) {
        for (const key of keys)
          events.push({
            tenantId: tenant,
            eventType: "seq.step",
            source: "system" as const,
            contactId: key,
            payload: { n },
          });
      }
      // Several transactions, so the rows interleave as they would in production.
      for (let i = 0; i < events.length; i += 10) await writeEvents(db, events.slice(i, i + 10));
      await eventually(
        () => ["a", "b", "c", "d"].every((k) => byKey.get(k)?.length === 20),
        15_000,
        "all open keys delivered",
      );
      for (const k of ["a", "b", "c", "d"])
        expect(byKey.get(k)).toEqual(Array.from({ length: 20 }, (_, n) => n));
      expect(blockedFailures).toBeGreaterThan(0);
      // The blocked key never got past its first event.
      expect(
        await count(db, "outbox", `event_type = 'seq.step' and ordering_key = 'blocked' and attempts > 0`),
      ).toBe(1);
      await worker.stop();
      await db.execute(sql`delete from subscriptions where id = ${ordered.id}`);
    });
  });
}

describe("event bus ordering: wake-ups", () => {
  const bus = useBusDatabase("pglite");

  it("delivers the next event of an ordered key as soon as the previous one is done, without waiting for a poll", async () => {
    const { db } = bus;
    const tenant = await makeTenant(db);
    await createSubscription(db, tenant, {
      name: "ordered-fast",
      eventTypes: ["chain.*"],
      sink: { type: "handler", name: "chain" },
      ordered: true,
    });
    const handlers = new HandlerRegistry();
    const seen: number[] = [];
    handlers.register("chain", (event) => {
      seen.push(Number(event.payload.n));
    });
    const worker = createDispatcher({ db, listen: bus.listen, handlers, pollIntervalMs: 60_000 });
    await bus.start(worker);
    await writeEvents(
      db,
      Array.from({ length: 5 }, (_, n) => ({
        tenantId: tenant,
        eventType: "chain.step",
        source: "system" as const,
        contactId: "k",
        payload: { n },
      })),
    );
    await eventually(() => seen.length === 5, 5_000, "the whole chain without polling");
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    await worker.stop();
  });
});
