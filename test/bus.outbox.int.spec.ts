import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { noHandlers, outboxQueue } from "../src/bus/outboxQueue.js";
import { replayEvents } from "../src/bus/replay.js";
import { destinationPolicy } from "../src/bus/sinks/destination.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { createSubscription, deleteSubscription, setPaused } from "../src/bus/subscriptions.js";
import { query } from "../src/db/client.js";
import { writeEvents } from "../src/events/write.js";
import { claimBatch, explainClaim } from "../src/queue/claim.js";
import { completeBatch } from "../src/queue/complete.js";
import { webhookDeliveriesQueue } from "../src/queue/definitions.js";
import { queueDepthQuery, registerQueueDepth } from "../src/queue/metrics.js";
import { fast, useBusDatabase, webhookReceiver } from "./support/bus.js";
import { backends } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { eventually } from "./support/wait.js";

/** The outbox's rows: which process claims which (lanes), what the depth gauge reads, pausing. */
for (const backend of backends()) {
  describe(`event bus outbox on ${backend}`, () => {
    const bus = useBusDatabase(backend);

    it("leaves a handler's deliveries to a process that has the handler, instead of failing them", async () => {
      const { db } = bus;
      const tenant = await makeTenant(db);
      await createSubscription(db, tenant, {
        name: "elsewhere",
        eventTypes: ["elsewhere.*"],
        sink: { type: "handler", name: "elsewhere" },
      });
      // A process without the handler (as `herald serve` is) claims around the row.
      const without = await bus.start(
        createDispatcher({
          db,
          listen: bus.listen,
          handlers: new HandlerRegistry(),
          destinations: destinationPolicy(["127.0.0.0/8"]),
          ...fast,
        }),
      );
      // A probe for the process without the handler: a webhook row committed with the handler's row. Once
      // the probe is delivered, that process has run a claim that saw the handler's row (no sleep needed).
      const probe = await webhookReceiver();
      await createSubscription(db, tenant, {
        name: "elsewhere-probe",
        eventTypes: ["probe.elsewhere"],
        sink: { type: "webhook", url: probe.url },
      });
      const [written] = await writeEvents(db, [
        { tenantId: tenant, eventType: "elsewhere.happened", source: "system" as const },
        { tenantId: tenant, eventType: "probe.elsewhere", source: "system" as const },
      ]);
      const eventId = written!.event.id;
      await eventually(() => probe.received.length === 1, 10_000, "the probe delivered");
      probe.server.close();
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
      const withHandler = await bus.start(createDispatcher({ db, listen: bus.listen, handlers, ...fast }));
      await eventually(() => seen.length >= 1, 10_000, "delivered by the process with the handler");
      expect(seen).toEqual([eventId]);
      expect(await count(db, "dead_letters", `event_id = '${eventId}'`)).toBe(0);
      await Promise.all([without.stop(), withHandler.stop()]);
    });

    it("marks handler rows, replays included, and claims them in lanes: a process without handlers takes only the others", async () => {
      const { db } = bus;
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
      const { db } = bus;
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

    // Only PostgreSQL has two sessions to interleave.
    it.skipIf(backend !== "postgres")(
      "deletes a subscription while one of its rows is being acknowledged, without a deadlock",
      async () => {
        const { db } = bus;
        const tenant = await makeTenant(db);
        const sub = await createSubscription(db, tenant, {
          name: "going",
          eventTypes: ["going.*"],
          sink: { type: "handler", name: "going" },
        });
        const [written] = await writeEvents(db, [
          { tenantId: tenant, eventType: "going.x", source: "system" },
        ]);
        await db.execute(sql`update outbox set next_attempt_at = now() - interval '1 second'
          where event_id = ${written!.event.id}`);
        const claimed = await claimBatch(db, outboxQueue, {
          workerId: "acker",
          limit: 100,
          leaseMs: 60_000,
          now: new Date(),
        });
        const row = claimed.find((r) => r.event_id === written!.event.id)!;
        // The acknowledgement's transaction holds the row (as its statement does once it has deleted it)
        // until the delete is waiting, then counts it into the rollups, which needs the subscription.
        let proceed!: () => void;
        const go = new Promise<void>((resolve) => {
          proceed = resolve;
        });
        let held!: () => void;
        const locked = new Promise<void>((resolve) => {
          held = resolve;
        });
        const ack = db.transaction(async (tx) => {
          await tx.execute(sql`select id from outbox where id = ${row.id} for update`);
          held();
          await go;
          return completeBatch(tx, outboxQueue, "acker", [row], new Date());
        });
        // Only once the row is held: a delete that came first would find nothing to wait for.
        await locked;
        const deleting = deleteSubscription(db, tenant, sub.id);
        await eventually(
          async () =>
            (
              await query<{ n: number }>(
                db,
                sql`select count(*)::int as n from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock'`,
              )
            )[0]!.n > 0,
          5000,
          "the delete waiting",
        );
        proceed();
        expect(await ack).toEqual([row.id]);
        expect(await deleting).toBe(true);
        expect(await count(db, "outbox", `subscription_id = '${sub.id}'`)).toBe(0);
        expect(await count(db, "delivery_rollups", `subscription_id = '${sub.id}'`)).toBe(0);
      },
    );

    it("holds a paused subscription's deliveries out of the claims' way and delivers them on resume", async () => {
      const { db } = bus;
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
      const probed: string[] = [];
      handlers.register("probe", (event) => {
        probed.push(event.id);
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
      const worker = await bus.start(
        createDispatcher({ db, listen: bus.listen, handlers, ...fast, leaseMs: 2000 }),
      );
      // A probe of an unpaused subscription, written after the worker started: once it is delivered, the
      // worker has claimed past the five held rows (no sleep needed to show they stayed put).
      await createSubscription(db, tenant, {
        name: "unpaused",
        eventTypes: ["probe.*"],
        sink: { type: "handler", name: "probe" },
      });
      const [probe] = await writeEvents(db, [{ tenantId: tenant, eventType: "probe.x", source: "system" }]);
      await eventually(() => probed.includes(probe!.event.id), 10_000, "the probe delivered");
      expect(seen).toHaveLength(0);

      await db.transaction((tx) => setPaused(tx, tenant, sub.id, false));
      await eventually(() => seen.length === 5, 10_000, "delivered after resume");
      expect(new Set(seen)).toEqual(new Set([...before, ...during]));

      // A row queued as held by a writer that still saw the pause, committed after the resume: released.
      const [late] = await write(1);
      await eventually(async () => seen.includes(late!), 10_000);
      // Once delivered, its row is gone (deleted as it is counted); the late writer's row is queued again.
      await eventually(async () => (await count(db, "outbox", `event_id = '${late}'`)) === 0, 10_000);
      await db.execute(sql`insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type, handler,
          next_attempt_at)
        select tenant_id, ${sub.id}, id, ts, event_type, 'held', 'infinity' from events where id = ${late}`);
      await eventually(() => seen.filter((id) => id === late).length === 2, 10_000, "released by the upkeep");
      await worker.stop();
    });
  });
}
