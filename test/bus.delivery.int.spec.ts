import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { outboxQueue } from "../src/bus/outboxQueue.js";
import { destinationPolicy } from "../src/bus/sinks/destination.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { createSubscription, setPaused } from "../src/bus/subscriptions.js";
import { query } from "../src/db/client.js";
import type { StoredEvent } from "../src/events/types.js";
import { writeEvents } from "../src/events/write.js";
import { LocalHandOver } from "../src/queue/handOver.js";
import { instrumentWorker } from "../src/queue/metrics.js";
import { fast, useBusDatabase, webhookReceiver } from "./support/bus.js";
import { SteppingClock } from "./support/clock.js";
import { backends } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { delivered, rollupsOf } from "./support/rollups.js";
import { eventually } from "./support/wait.js";

/** The bus delivers: to in-process handlers (handed over straight from the writer, or claimed), to signed webhooks. */
for (const backend of backends()) {
  describe(`event bus delivery on ${backend}`, () => {
    const bus = useBusDatabase(backend);

    it("delivers every event once to an in-process handler and reports the lifecycle", async () => {
      const { db } = bus;
      const tenant = await makeTenant(db);
      const subscription = await createSubscription(db, tenant, {
        name: "h",
        eventTypes: ["order.*"],
        sink: { type: "handler", name: "orders" },
      });
      const handlers = new HandlerRegistry();
      const seen: string[] = [];
      handlers.register("orders", (event) => {
        seen.push(event.id);
      });
      const worker = await bus.start(createDispatcher({ db, listen: bus.listen, handlers, ...fast }));
      const completed: number[] = [];
      worker.on("job:completed", (rows) => completed.push(...rows.map((r) => r.id)));
      const registry = new Registry();
      instrumentWorker(worker, outboxQueue, registry);
      const before = Date.now();
      const written = await writeEvents(
        db,
        Array.from({ length: 50 }, (_, i) => ({
          tenantId: tenant,
          eventType: "order.placed",
          source: "system" as const,
          payload: { i },
        })),
      );
      await eventually(() => seen.length >= 50, 10_000, "50 deliveries");
      // Each delivered row is deleted as it is counted into its minute's rollup: none is left behind.
      await eventually(async () => (await count(db, "outbox", `tenant_id = '${tenant}'`)) === 0);
      const after = Date.now();
      expect(new Set(seen)).toEqual(new Set(written.map((w) => w.event.id)));
      expect(seen).toHaveLength(50);
      await worker.stop(); // job:completed fires after the commit other connections already see
      expect(completed).toHaveLength(50);
      // The metrics see the completions too: processed, and the latency from each row's creation.
      const text = await registry.metrics();
      expect(text).toContain('herald_queue_processed_total{queue="outbox"} 50\n');
      expect(text).toContain('herald_queue_latency_seconds_count{queue="outbox"} 50\n');
      const rollups = await rollupsOf(db, tenant);
      expect(rollups.reduce((n, r) => n + r.delivered, 0)).toBe(50);
      const minute = (ms: number) =>
        new Date(Math.floor(ms / 60_000) * 60_000).toISOString().replace(".000", "");
      for (const r of rollups) {
        expect(r).toMatchObject({ subscription_id: subscription.id, event_type: "order.placed", retried: 0 });
        expect([minute(before), minute(after)]).toContain(r.minute);
        expect(Date.parse(r.last_delivered_at)).toBeGreaterThanOrEqual(before - 1000);
        expect(Date.parse(r.last_delivered_at)).toBeLessThanOrEqual(after + 1000);
      }
    });

    it("hands deliveries of its own handlers from a write that is its own transaction straight to its dispatcher", async () => {
      const { db } = bus;
      const tenant = await makeTenant(db);
      const handler = { type: "handler" as const, name: "direct" };
      const direct = await createSubscription(db, tenant, {
        name: "direct",
        eventTypes: ["direct.*"],
        sink: handler,
      });
      // Ordered and paused subscriptions follow the claim's own rules: never handed over.
      const ordered = await createSubscription(db, tenant, {
        name: "direct-ordered",
        eventTypes: ["direct.*"],
        sink: handler,
        ordered: true,
      });
      const paused = await createSubscription(db, tenant, {
        name: "direct-paused",
        eventTypes: ["direct.*"],
        sink: handler,
      });
      await setPaused(db, tenant, paused.id, true);
      const seen: string[] = [];
      const handlers = new HandlerRegistry();
      handlers.register("direct", (event) => {
        seen.push(event.id);
      });
      // No LISTEN and a poll once a minute: within this test only a hand-over delivers anything.
      // The hand-over is the caller's object, given to the dispatcher and to the writer.
      const handOver = new LocalHandOver(db);
      const dispatcher = await bus.start(
        createDispatcher({ db, handlers, pollIntervalMs: 60_000, leaseMs: 5000, handOver }),
      );
      const claimedIds: number[] = [];
      dispatcher.on("job:claimed", (rows) => claimedIds.push(...rows.map((r) => r.id)));
      const rowsOf = (eventId: string) =>
        query<{ id: number; subscription_id: string; status: string; attempts: number; held: boolean }>(
          db,
          sql`select id::int as id, subscription_id, status, attempts, next_attempt_at = 'infinity' as held
            from outbox where event_id = ${eventId} order by id`,
        );

      // A writer not given the hand-over claims nothing itself: its rows wait for the claim (none in this test).
      const [plain] = await writeEvents(db, [
        { tenantId: tenant, eventType: "direct.w", source: "system" as const },
      ]);
      expect((await rowsOf(plain!.event.id)).map((r) => r.status)).toEqual(["pending", "pending", "pending"]);

      const [handedOver] = await writeEvents(
        db,
        [{ tenantId: tenant, eventType: "direct.x", source: "system" as const }],
        { handOver },
      );
      // Handed over before the write returned: the dispatcher already has the row the write claimed.
      const rows = await rowsOf(handedOver!.event.id);
      const handed = rows.find((r) => r.subscription_id === direct.id)!;
      expect(claimedIds).toEqual([handed.id]);
      expect(rows.find((r) => r.subscription_id === ordered.id)).toMatchObject({
        status: "pending",
        attempts: 0,
      });
      expect(rows.find((r) => r.subscription_id === paused.id)).toMatchObject({
        status: "pending",
        held: true,
      });
      await eventually(() => seen.includes(handedOver!.event.id), 5000, "delivered");
      // Acknowledged: the row is gone, counted as delivered on its first attempt.
      await eventually(
        async () => !(await rowsOf(handedOver!.event.id)).some((r) => r.id === handed.id),
        5000,
        "acknowledged",
      );
      expect(await rollupsOf(db, tenant)).toMatchObject([
        { subscription_id: direct.id, event_type: "direct.x", delivered: 1, retried: 0 },
      ]);

      // Written inside a caller's transaction: claimed the ordinary way once it commits, not handed over.
      // No wait is needed to prove it: a hand-over is a claim made by the write's own statement, so a row
      // handed over would already be `processing` when the transaction commits; all three are pending.
      const [inTx] = await db.transaction((tx) =>
        writeEvents(tx, [{ tenantId: tenant, eventType: "direct.y", source: "system" as const }], {
          handOver,
        }),
      );
      expect((await rowsOf(inTx!.event.id)).map((r) => r.status)).toEqual(["pending", "pending", "pending"]);
      expect(seen).not.toContain(inTx!.event.id);
      expect(claimedIds).toEqual([handed.id]);
      await dispatcher.stop();
    });

    it("signs webhook deliveries per Standard Webhooks, and retries non-2xx answers", async () => {
      const { db } = bus;
      const tenant = await makeTenant(db);
      let failFirst = true;
      const { url, received, server } = await webhookReceiver(() => {
        if (!failFirst) return { status: 204 };
        failFirst = false;
        return { status: 503, body: "try later" };
      });
      const sub = await createSubscription(db, tenant, {
        name: "hook",
        eventTypes: ["invoice.paid"],
        sink: { type: "webhook", url },
      });
      const worker = await bus.start(
        createDispatcher({
          db,
          listen: bus.listen,
          handlers: new HandlerRegistry(),
          // The receiver is on loopback, which webhook sinks may only reach when allowed.
          destinations: destinationPolicy(["127.0.0.0/8"]),
          ...fast,
        }),
      );
      const failures: string[] = [];
      worker.on("job:failed", (_row, error) => failures.push(error));
      const [written] = await writeEvents(db, [
        {
          tenantId: tenant,
          eventType: "invoice.paid",
          source: "system",
          payload: { amount: 42 },
          correlationId: "c-1",
        },
      ]);
      await eventually(() => received.length === 1, 10_000, "a webhook");
      await worker.stop();
      server.close();
      expect(failures).toEqual([`WebhookError: POST ${url} answered 503: try later`]);
      const { headers, body } = received[0]!;
      const signed = {
        "webhook-id": String(headers["webhook-id"]),
        "webhook-timestamp": String(headers["webhook-timestamp"]),
        "webhook-signature": String(headers["webhook-signature"]),
      };
      const verified = new Webhook(sub.secret).verify(body, signed) as { type: string; data: StoredEvent };
      expect(headers["webhook-id"]).toBe(written!.event.id);
      expect(verified.type).toBe("invoice.paid");
      expect(verified.data).toMatchObject({
        id: written!.event.id,
        payload: { amount: 42 },
        correlation_id: "c-1",
      });
      expect(verified.data).not.toHaveProperty("tenant_id");
      // A tampered body does not verify.
      expect(() => new Webhook(sub.secret).verify(body.replace("42", "43"), signed)).toThrow();
    });
  });
}

describe("event bus delivery: leases", () => {
  const bus = useBusDatabase("pglite");

  it("does not start a buffered row whose lease ran out, so a slow sink never gets a row twice", async () => {
    const { db } = bus;
    const tenant = await makeTenant(db);
    await createSubscription(db, tenant, {
      name: "slow",
      eventTypes: ["slow.*"],
      sink: { type: "handler", name: "slow" },
      maxAttempts: 50,
    });
    // The sink takes 250 ms of the dispatcher's clock per event: the leases run out as they would behind a
    // slow sink, without the test sleeping through them.
    const clock = new SteppingClock();
    const handlers = new HandlerRegistry();
    const deliveries = new Map<string, number>();
    handlers.register("slow", (event) => {
      deliveries.set(event.id, (deliveries.get(event.id) ?? 0) + 1);
      clock.advance(250);
    });
    const worker = createDispatcher({
      db,
      listen: bus.listen,
      handlers,
      clock,
      concurrency: 1,
      batchSize: 10,
      // Rows 7–10 start past 1500 ms, within the last quarter of the lease, and are given up; the last row
      // allowed to start still has 250 ms of slack before its lease ends.
      leaseMs: 2000,
      pollIntervalMs: 100,
    });
    const lost: number[] = [];
    worker.on("job:lost", (row) => lost.push(row.id));
    await bus.start(worker);
    const written = await writeEvents(
      db,
      Array.from({ length: 10 }, (_, i) => ({
        tenantId: tenant,
        eventType: "slow.job",
        source: "system" as const,
        payload: { i },
      })),
    );
    await eventually(() => deliveries.size === 10, 20_000, "every event delivered");
    await eventually(async () => (await count(db, "outbox", "event_type = 'slow.job'")) === 0, 10_000);
    expect(await delivered(db, "event_type = 'slow.job'")).toBe(10);
    await worker.stop();
    expect(lost.length).toBeGreaterThan(0); // some rows outlived their lease in the buffer…
    expect([...deliveries.values()].every((n) => n === 1)).toBe(true); // …and still none ran twice
    expect(new Set(deliveries.keys())).toEqual(new Set(written.map((w) => w.event.id)));
  });
});
