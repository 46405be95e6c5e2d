import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toDelivery } from "../src/bus/delivery.js";
import { createDispatcher } from "../src/bus/dispatcher.js";
import { outboxQueue } from "../src/bus/outboxQueue.js";
import { HandlerRegistry } from "../src/bus/sinks/handlers.js";
import { NatsPublisher } from "../src/bus/sinks/nats.js";
import type { SubscriptionTarget } from "../src/bus/subscriptionCache.js";
import { createSubscription } from "../src/bus/subscriptions.js";
import { query } from "../src/db/client.js";
import { writeEvents } from "../src/events/write.js";
import { claimBatch } from "../src/queue/claim.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { makeTenant } from "./support/fixtures.js";
import { eventually } from "./support/wait.js";

const servers = process.env.HERALD_NATS_URL ?? "nats://127.0.0.1:4222";
const stream = `HERALD_TEST_${process.pid}`;
const subject = `herald.test.${process.pid}`;

/** The NATS sink against the real local JetStream server. */
describe("NATS JetStream sink", () => {
  let t: TestDatabase;
  let publisher: NatsPublisher;

  beforeAll(async () => {
    t = await createTestDatabase(hasPostgres() ? "postgres" : "pglite");
    publisher = new NatsPublisher(servers);
    const nc = await connect({ servers });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => undefined);
    await jsm.streams.add({ name: stream, subjects: [`${subject}.>`], duplicate_window: 120_000_000_000 });
    await nc.drain();
  });
  afterAll(async () => {
    const nc = await connect({ servers });
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
    await nc.drain();
    await publisher.close();
    await t?.drop();
  });

  const messagesInStream = async () => {
    const nc = await connect({ servers });
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    await nc.drain();
    return info.state.messages;
  };

  it("publishes each event with Nats-Msg-Id = event id, and the broker drops a duplicate publish", async () => {
    const db = t.database.db;
    const tenant = await makeTenant(db);
    await createSubscription(db, tenant, {
      name: "nats",
      eventTypes: ["nats.*"],
      sink: { type: "nats", subject: `${subject}.events` },
    });
    const [written] = await writeEvents(db, [
      { tenantId: tenant, eventType: "nats.hello", source: "system", payload: { hi: 1 } },
    ]);

    // Publish the same delivery twice by hand: the second is recognised as a duplicate.
    const [row] = await claimBatch(db, outboxQueue, {
      workerId: "manual",
      limit: 1,
      leaseMs: 60_000,
      now: new Date(),
    });
    const delivery = toDelivery(
      row!,
      (
        await query<SubscriptionTarget>(
          db,
          sql`select id, name, sink, secret from subscriptions where id = ${row!.subscription_id as string}`,
        )
      )[0],
    );
    expect(await publisher.publish(`${subject}.events`, delivery)).toEqual({ duplicate: false });
    expect(await publisher.publish(`${subject}.events`, delivery)).toEqual({ duplicate: true });
    expect(await messagesInStream()).toBe(1);

    // The dispatcher publishes new events on its own.
    await writeEvents(db, [{ tenantId: tenant, eventType: "nats.second", source: "system" }]);
    const worker = createDispatcher({
      db,
      listen: t.database.listen,
      handlers: new HandlerRegistry(),
      nats: publisher,
      pollIntervalMs: 50,
    });
    await worker.start();
    await eventually(async () => (await messagesInStream()) === 2, 10_000, "the dispatcher's publish");
    await worker.stop();

    const nc = await connect({ servers });
    const js = (await import("@nats-io/jetstream")).jetstream(nc);
    const first = await js.streams.get(stream).then((s) => s.getMessage({ seq: 1 }));
    expect(first?.header?.get("Nats-Msg-Id")).toBe(written!.event.id);
    expect(first?.json<{ type: string; data: { id: string } }>()).toMatchObject({
      type: "nats.hello",
      data: { id: written!.event.id },
    });
    await nc.drain();
  });
});
