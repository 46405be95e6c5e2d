import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { retryDeadLetters } from "../src/bus/deadLetters.js";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { noHandlers, outboxQueue } from "../src/bus/outboxQueue.js";
import { replayEvents } from "../src/bus/replay.js";
import { destinationPolicy } from "../src/bus/sinks/destination.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { createSubscription, setPaused } from "../src/bus/subscriptions.js";
import { type Db, query } from "../src/db/client.js";
import type { StoredEvent } from "../src/events/types.js";
import { writeEvents } from "../src/events/write.js";
import { claimBatch, explainClaim } from "../src/queue/claim.js";
import { webhookDeliveriesQueue } from "../src/queue/definitions.js";
import { queueDepthQuery, registerQueueDepth } from "../src/queue/metrics.js";
import type { Worker } from "../src/queue/worker.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { eventually, sleep } from "./support/wait.js";

const fast = { pollIntervalMs: 50, backoff: { baseMs: 5, maxMs: 20 }, leaseMs: 5000 };

for (const backend of backends()) {
  describe(`event bus on ${backend}`, () => {
    let t: TestDatabase;
    let db: Db;
    const workers: Worker[] = [];
    const start = async (worker: Worker) => {
      workers.push(worker);
      await worker.start();
      return worker;
    };

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      db = t.database.db;
    });
    afterAll(async () => {
      for (const w of workers) await w.stop();
      await t?.drop();
    });

    it("delivers every event once to an in-process handler and reports the lifecycle", async () => {
      const tenant = await makeTenant(db);
      await createSubscription(db, tenant, {
        name: "h",
        eventTypes: ["order.*"],
        sink: { type: "handler", name: "orders" },
      });
      const handlers = new HandlerRegistry();
      const seen: string[] = [];
      handlers.register("orders", (event) => {
        seen.push(event.id);
      });
      const worker = await start(createDispatcher({ db, listen: t.database.listen, handlers, ...fast }));
      const completed: number[] = [];
      worker.on("job:completed", (rows) => completed.push(...rows.map((r) => r.id)));
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
      await eventually(async () => (await count(db, "outbox", "status = 'completed'")) >= 50);
      expect(new Set(seen)).toEqual(new Set(written.map((w) => w.event.id)));
      expect(seen).toHaveLength(50);
      await worker.stop(); // job:completed fires after the commit other connections already see
      expect(completed).toHaveLength(50);
    });

    it("hands deliveries of its own handlers from a write that is its own transaction straight to its dispatcher", async () => {
      const tenant = await makeTenant(db);
      const handler = { type: "handler" as const, name: "direct" };
      await createSubscription(db, tenant, { name: "direct", eventTypes: ["direct.*"], sink: handler });
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
      const dispatcher = await start(
        createDispatcher({ db, handlers, pollIntervalMs: 60_000, leaseMs: 5000 }),
      );
      const claimedIds: number[] = [];
      dispatcher.on("job:claimed", (rows) => claimedIds.push(...rows.map((r) => r.id)));
      const rowsOf = (eventId: string) =>
        query<{ id: number; subscription_id: string; status: string; attempts: number; held: boolean }>(
          db,
          sql`select id::int as id, subscription_id, status, attempts, next_attempt_at = 'infinity' as held
            from outbox where event_id = ${eventId} order by id`,
        );

      const [direct] = await writeEvents(db, [
        { tenantId: tenant, eventType: "direct.x", source: "system" as const },
      ]);
      // Handed over before the write returned: the dispatcher already has the row the write claimed.
      const rows = await rowsOf(direct!.event.id);
      const handed = rows.find((r) => r.subscription_id !== ordered.id && r.subscription_id !== paused.id)!;
      expect(claimedIds).toEqual([handed.id]);
      expect(rows.find((r) => r.subscription_id === ordered.id)).toMatchObject({
        status: "pending",
        attempts: 0,
      });
      expect(rows.find((r) => r.subscription_id === paused.id)).toMatchObject({
        status: "pending",
        held: true,
      });
      await eventually(() => seen.includes(direct!.event.id), 5000, "delivered");
      await eventually(
        async () => (await rowsOf(direct!.event.id)).find((r) => r.id === handed.id)!.status === "completed",
        5000,
        "acknowledged",
      );
      expect((await rowsOf(direct!.event.id)).find((r) => r.id === handed.id)!.attempts).toBe(1);

      // Written inside a caller's transaction: claimed the ordinary way once it commits, not handed over.
      const [inTx] = await db.transaction((tx) =>
        writeEvents(tx, [{ tenantId: tenant, eventType: "direct.y", source: "system" as const }]),
      );
      await sleep(300);
      expect(seen).not.toContain(inTx!.event.id);
      expect((await rowsOf(inTx!.event.id)).map((r) => r.status)).toEqual(["pending", "pending", "pending"]);
      expect(claimedIds).toEqual([handed.id]);
      await dispatcher.stop();
    });

    it("leaves a handler's deliveries to a process that has the handler, instead of failing them", async () => {
      const tenant = await makeTenant(db);
      await createSubscription(db, tenant, {
        name: "elsewhere",
        eventTypes: ["elsewhere.*"],
        sink: { type: "handler", name: "elsewhere" },
      });
      // A process without the handler (as `herald serve` is) claims around the row.
      const without = await start(
        createDispatcher({ db, listen: t.database.listen, handlers: new HandlerRegistry(), ...fast }),
      );
      const [written] = await writeEvents(db, [
        { tenantId: tenant, eventType: "elsewhere.happened", source: "system" as const },
      ]);
      const eventId = written!.event.id;
      await sleep(400);
      const [row] = await query<{ status: string; attempts: number }>(
        db,
        sql`select status, attempts from outbox where event_id = ${eventId}`,
      );
      expect(row).toMatchObject({ status: "pending", attempts: 0 });

      const handlers = new HandlerRegistry();
      const seen: string[] = [];
      handlers.register("elsewhere", (event) => {
        seen.push(event.id);
      });
      const withHandler = await start(createDispatcher({ db, listen: t.database.listen, handlers, ...fast }));
      await eventually(() => seen.length >= 1, 10_000, "delivered by the process with the handler");
      expect(seen).toEqual([eventId]);
      expect(await count(db, "dead_letters", `event_id = '${eventId}'`)).toBe(0);
      await Promise.all([without.stop(), withHandler.stop()]);
    });

    it("marks handler rows, replays included, and claims them in lanes: a process without handlers takes only the others", async () => {
      const tenant = await makeTenant(db);
      const absent = await createSubscription(db, tenant, {
        name: "absent",
        eventTypes: ["lane.*"],
        sink: { type: "handler", name: "absent-app" },
      });
      const remote = await createSubscription(db, tenant, {
        name: "remote",
        eventTypes: ["lane.*"],
        sink: { type: "nats", subject: "herald.lane" },
      });
      await writeEvents(
        db,
        Array.from({ length: 30 }, (_, i) => ({
          tenantId: tenant,
          eventType: "lane.x",
          source: "system" as const,
          payload: { i },
        })),
      );
      await replayEvents(db, { tenantId: tenant, subscriptionId: absent.id });
      await replayEvents(db, { tenantId: tenant, subscriptionId: remote.id });
      const lanes = await query<{ subscription_id: string; handler: string | null; n: number }>(
        db,
        sql`select subscription_id, handler, count(*)::int as n from outbox where tenant_id = ${tenant}
          group by 1, 2 order by n`,
      );
      expect(lanes).toEqual(
        expect.arrayContaining([
          { subscription_id: absent.id, handler: "absent-app", n: 60 },
          { subscription_id: remote.id, handler: null, n: 60 },
        ]),
      );
      expect(lanes).toHaveLength(2);
      // The claim runs in lanes, each an ordered scan of its own index: webhook and NATS rows, and each
      // handler's rows (sequential scans off: on tables this small either would be "cheaper").
      const claim = { workerId: "planner", limit: 100, leaseMs: 60_000, now: new Date() };
      const planOf = (handlers: string) =>
        db.transaction(async (tx) => {
          await tx.execute(sql`set local enable_seqscan = off`);
          return explainClaim(tx, outboxQueue, { ...claim, filter: { handlers } });
        });
      type PlanNode = {
        "Node Type": string;
        "Relation Name"?: string;
        "Index Name"?: string;
        Alias?: string;
        Plans?: PlanNode[];
      };
      const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
      // The lanes' scans (alias q…) of the outbox: each an index scan of its lane's index.
      const scans = (plan: unknown) =>
        nodes((plan as [{ Plan: PlanNode }])[0].Plan)
          .filter((n) => n["Relation Name"] === "outbox" && /^q/.test(n.Alias ?? ""))
          .map((n) => `${n["Node Type"]} ${n["Index Name"] ?? ""}`.trim());
      expect(scans(await planOf("{absent-app}"))).toEqual([
        "Index Scan outbox_claim_idx",
        "Index Scan outbox_handler_claim_idx",
      ]);
      expect(scans(await planOf(noHandlers))).toEqual(["Index Scan outbox_claim_idx"]);
      // And it takes this tenant's NATS rows, leaving every handler row pending, unclaimed.
      const claimed = await claimBatch(db, outboxQueue, {
        ...claim,
        workerId: "no-handlers",
        limit: 10_000,
        filter: { handlers: noHandlers },
      });
      expect(claimed.filter((r) => r.tenant_id === tenant).map((r) => r.subscription_id)).toEqual(
        Array(60).fill(remote.id),
      );
      expect(
        await count(db, "outbox", `subscription_id = '${absent.id}' and status = 'pending' and attempts = 0`),
      ).toBe(60);
      await query(db, sql`delete from outbox where tenant_id = ${tenant}`);
    });

    it("reports queue depth through the partial indexes, without reading the tables", async () => {
      const tenant = await makeTenant(db);
      await createSubscription(db, tenant, {
        name: "depth",
        eventTypes: ["depth.*"],
        sink: { type: "handler", name: "depth-app" },
      });
      await writeEvents(
        db,
        Array.from({ length: 5 }, () => ({
          tenantId: tenant,
          eventType: "depth.x",
          source: "system" as const,
        })),
      );
      const registry = new Registry();
      registerQueueDepth(registry, db, [outboxQueue, webhookDeliveriesQueue]);
      // Other tests' dispatchers may still be moving rows: compare until a reading agrees with the tables.
      const disagreements = async () => {
        const gauge = await registry.getSingleMetric("herald_queue_depth")!.get();
        const wrong: string[] = [];
        for (const queue of ["outbox", "webhook_deliveries"] as const) {
          for (const status of ["pending", "processing"]) {
            const value = gauge.values.find(
              (v) => v.labels.queue === queue && v.labels.status === status,
            )?.value;
            const rows = await count(db, queue, `status = '${status}'`);
            if (value !== rows) wrong.push(`${queue} ${status}: gauge ${value}, table ${rows}`);
          }
        }
        return wrong;
      };
      await eventually(
        async () => (await disagreements()).length === 0,
        10_000,
        "the gauge agrees with the tables",
      );
      // This test's five rows wait for a handler no process runs: the pending count cannot be a default 0.
      const gauge = await registry.getSingleMetric("herald_queue_depth")!.get();
      expect(
        gauge.values.find((v) => v.labels.queue === "outbox" && v.labels.status === "pending")!.value,
      ).toBeGreaterThanOrEqual(5);
      // Overlapping scrapes (two Prometheus servers) each get every series, whatever the interleaving.
      const scrapes = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          for (let n = 0; n < i; n++) await new Promise((r) => setImmediate(r));
          return (await registry.getSingleMetric("herald_queue_depth")!.get()).values.length;
        }),
      );
      expect(scrapes).toEqual(Array(8).fill(4));
      // Each count reads a partial index (sequential scans off: a query no index can serve still scans).
      for (const queue of [outboxQueue, webhookDeliveriesQueue]) {
        const plan = await db.transaction(async (tx) => {
          await tx.execute(sql`set local enable_seqscan = off`);
          return query<{ "QUERY PLAN": string }>(tx, sql`explain ${queueDepthQuery(queue)}`);
        });
        const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
        expect(text, queue.name).not.toMatch(/Seq Scan/);
        expect(text, queue.name).toMatch(/Index Only Scan|Index Scan|Bitmap/);
      }
    });

    it("holds a paused subscription's deliveries out of the claims' way and delivers them on resume", async () => {
      const tenant = await makeTenant(db);
      const sub = await createSubscription(db, tenant, {
        name: "paused",
        eventTypes: ["held.*"],
        sink: { type: "handler", name: "held" },
      });
      const handlers = new HandlerRegistry();
      const seen: string[] = [];
      handlers.register("held", (event) => {
        seen.push(event.id);
      });
      const write = async (n: number) =>
        (
          await writeEvents(
            db,
            Array.from({ length: n }, (_, i) => ({
              tenantId: tenant,
              eventType: "held.x",
              source: "system" as const,
              payload: { i },
            })),
          )
        ).map((w) => w.event.id);
      const held = `subscription_id = '${sub.id}' and status = 'pending' and next_attempt_at = 'infinity'`;
      // Queued before the pause (held by the pause itself) and during it (held as they are queued).
      const before = await write(2);
      await db.transaction((tx) => setPaused(tx, tenant, sub.id, true));
      expect(await count(db, "outbox", held)).toBe(2);
      const during = await write(3);
      expect(await count(db, "outbox", held)).toBe(5);
      // Short leases: the upkeep that runs with each reap comes every second.
      const worker = await start(
        createDispatcher({ db, listen: t.database.listen, handlers, ...fast, leaseMs: 2000 }),
      );
      await sleep(300);
      expect(seen).toHaveLength(0);

      await db.transaction((tx) => setPaused(tx, tenant, sub.id, false));
      await eventually(() => seen.length === 5, 10_000, "delivered after resume");
      expect(new Set(seen)).toEqual(new Set([...before, ...during]));

      // A row queued as held by a writer that still saw the pause, committed after the resume: released.
      const [late] = await write(1);
      await eventually(async () => seen.includes(late!), 10_000);
      await db.execute(sql`update outbox set status = 'pending', attempts = 0, next_attempt_at = 'infinity'
        where event_id = ${late}`);
      await eventually(() => seen.filter((id) => id === late).length === 2, 10_000, "released by the upkeep");
      await worker.stop();
    });

    it("dead-letters a poison event with its error, leaves the others alone, and retries it once fixed", async () => {
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
      const worker = await start(createDispatcher({ db, listen: t.database.listen, handlers, ...fast }));
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
      await sleep(200);
      expect(delivered.filter((n) => n === "2")).toHaveLength(1);
      expect(await retryDeadLetters(db, tenant, { subscriptionId: sub.id })).toBe(0);
      await worker.stop();
    });

    it("keeps per-key order on ordered subscriptions with concurrency, and a failing key blocks only itself", async () => {
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
        await sleep(Math.random() * 5);
        byKey.set(key, [...(byKey.get(key) ?? []), Number(event.payload.n)]);
      });
      const worker = await start(
        createDispatcher({ db, listen: t.database.listen, handlers, concurrency: 8, batchSize: 50, ...fast }),
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

    it("signs webhook deliveries per Standard Webhooks, and retries non-2xx answers", async () => {
      const tenant = await makeTenant(db);
      const received: { headers: Record<string, string>; body: string }[] = [];
      let failFirst = true;
      const server = createServer((req, res) => {
        let body = "";
        req.on("data", (c) => {
          body += c;
        });
        req.on("end", () => {
          if (failFirst) {
            failFirst = false;
            res.writeHead(503).end("try later");
            return;
          }
          received.push({ headers: req.headers as Record<string, string>, body });
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const sub = await createSubscription(db, tenant, {
        name: "hook",
        eventTypes: ["invoice.paid"],
        sink: { type: "webhook", url },
      });
      const worker = await start(
        createDispatcher({
          db,
          listen: t.database.listen,
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
      const verified = new Webhook(sub.secret).verify(body, {
        "webhook-id": headers["webhook-id"]!,
        "webhook-timestamp": headers["webhook-timestamp"]!,
        "webhook-signature": headers["webhook-signature"]!,
      }) as { type: string; data: StoredEvent };
      expect(headers["webhook-id"]).toBe(written!.event.id);
      expect(verified.type).toBe("invoice.paid");
      expect(verified.data).toMatchObject({
        id: written!.event.id,
        payload: { amount: 42 },
        correlation_id: "c-1",
      });
      expect(verified.data).not.toHaveProperty("tenant_id");
      // A tampered body does not verify.
      expect(() =>
        new Webhook(sub.secret).verify(body.replace("42", "43"), {
          "webhook-id": headers["webhook-id"]!,
          "webhook-timestamp": headers["webhook-timestamp"]!,
          "webhook-signature": headers["webhook-signature"]!,
        }),
      ).toThrow();
    });

    it("replays by type, date range and correlation id, in log order", async () => {
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
      await db.execute(sql`update outbox set status = 'completed' where subscription_id = ${sub.id}`);
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
      const worker = await start(createDispatcher({ db, listen: t.database.listen, handlers, ...fast }));
      await eventually(() => seen.length === 8, 10_000, "replayed deliveries");
      // Acknowledgements are written in batches, shortly after the handler returns.
      await eventually(
        async () =>
          (await count(db, "outbox", `replay_id = '${ranged.replayId}' and status = 'completed'`)) === 1,
        5_000,
        "replayed delivery completed",
      );
      await worker.stop();
    });
  });
}

describe("worker edge cases", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("pglite");
  });
  afterAll(() => t?.drop());

  it("does not start a buffered row whose lease ran out, so a slow sink never gets a row twice", async () => {
    const db = t.database.db;
    const tenant = await makeTenant(db);
    await createSubscription(db, tenant, {
      name: "slow",
      eventTypes: ["slow.*"],
      sink: { type: "handler", name: "slow" },
      maxAttempts: 50,
    });
    const handlers = new HandlerRegistry();
    const deliveries = new Map<string, number>();
    handlers.register("slow", async (event) => {
      deliveries.set(event.id, (deliveries.get(event.id) ?? 0) + 1);
      await sleep(250);
    });
    const worker = createDispatcher({
      db,
      listen: t.database.listen,
      handlers,
      concurrency: 1,
      batchSize: 10,
      // Rows 7–10 start past 1500 ms, within the last quarter of the lease, and are given up; the last row
      // allowed to start still has 250 ms of slack before its lease ends.
      leaseMs: 2000,
      pollIntervalMs: 100,
    });
    const lost: number[] = [];
    worker.on("job:lost", (row) => lost.push(row.id));
    await worker.start();
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
    await eventually(
      async () => (await count(db, "outbox", "event_type = 'slow.job' and status = 'completed'")) === 10,
      10_000,
    );
    await worker.stop();
    expect(lost.length).toBeGreaterThan(0); // some rows outlived their lease in the buffer…
    expect([...deliveries.values()].every((n) => n === 1)).toBe(true); // …and still none ran twice
    expect(new Set(deliveries.keys())).toEqual(new Set(written.map((w) => w.event.id)));
  });

  it("delivers the next event of an ordered key as soon as the previous one is done, without waiting for a poll", async () => {
    const db = t.database.db;
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
    const worker = createDispatcher({ db, listen: t.database.listen, handlers, pollIntervalMs: 60_000 });
    await worker.start();
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
