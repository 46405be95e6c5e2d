import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, query } from "../src/db/client.js";
import type { WebhookSource } from "../src/db/schema/index.js";
import { processDeliveries } from "../src/ingest/process.js";
import { receiveDelivery } from "../src/ingest/receive.js";
import { needsTransaction, registerAlone, registerMessage } from "../src/messages/register.js";
import { toQueueRow } from "../src/queue/row.js";
import { createSource } from "../src/tenancy/sources.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";
import { eventually, sleep } from "./support/wait.js";

/**
 * A message registered at the very moment its first events are stored: whichever commits second must see
 * the other, or the events would stay unlinked for good.
 */
describe.skipIf(!hasPostgres())("registration racing the processor", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("postgres");
  });
  afterAll(() => t?.drop());

  /** Archive `events` as a delivery of `source`, as the webhook door does; the delivery as a queue row. */
  async function archived(source: WebhookSource, events: Record<string, unknown>[]) {
    const db = t.database.db;
    const { deliveryId } = await receiveDelivery(db, source, {
      headers: {},
      body: Buffer.from(JSON.stringify(events)),
      remoteIp: undefined,
      publicUrl: `http://localhost/api/v1/webhooks/sendgrid/${source.id}`,
    });
    const [row] = await query(db, sql`select * from webhook_deliveries where id = ${deliveryId}`);
    return toQueueRow(row!);
  }

  // A single registration over HTTP is one statement outside a transaction (`registerAlone`), registered in
  // one when events wait for it; a batch is registered in its transaction.
  it.each([
    "in a transaction",
    "alone",
  ])("links every event, however the two interleave (registered %s)", async (mode) => {
    const db = t.database.db;
    const other = await openDatabase({ url: t.url });
    try {
      const tenantId = await makeTenant(db);
      const source = await createSource(db, tenantId, { provider: "sendgrid" });
      for (let i = 0; i < 40; i++) {
        const delivery = await archived(source, [
          {
            event: "delivered",
            email: `r${i}@x.io`,
            timestamp: Math.floor(Date.now() / 1000) + i, // this month: its partition exists, no DDL in the race
            sg_event_id: `race-${i}`,
            sg_message_id: `RACE${i}.filter-1`,
          },
        ]);
        // The sleeps are jitter, not waits: up to 4 ms at random on each side, so the two transactions
        // interleave differently on every round, which is what the race needs.
        await Promise.all([
          db.transaction(async (tx) => {
            await sleep(Math.random() * 4);
            await processDeliveries(tx, [delivery]);
            await sleep(Math.random() * 4);
          }),
          (async () => {
            const message = {
              channel: "email" as const,
              provider: "sendgrid",
              to: `r${i}@x.io`,
              providerMessageId: `RACE${i}`,
            };
            await sleep(Math.random() * 4);
            const alone =
              mode === "alone" ? await registerAlone(other.db, tenantId, message) : needsTransaction;
            if (alone === needsTransaction) {
              await other.db.transaction(async (tx) => {
                await registerMessage(tx, tenantId, message);
                await sleep(Math.random() * 4);
              });
            }
          })(),
        ]);
      }
      expect(
        await count(db, "message_events", `tenant_id = '${tenantId}' and outbound_message_id is null`),
      ).toBe(0);
      expect(await count(db, "outbound_messages", `tenant_id = '${tenantId}' and status = 'delivered'`)).toBe(
        40,
      );
    } finally {
      await other.close();
    }
  }, 60_000);

  it("ends a group suppression at the later of unsubscribe and resubscribe, processed at the same time", async () => {
    const db = t.database.db;
    const other = await openDatabase({ url: t.url });
    try {
      const tenantId = await makeTenant(db);
      const source = await createSource(db, tenantId, { provider: "sendgrid" });
      const now = Math.floor(Date.now() / 1000);
      const delivery = (event: string, at: number) =>
        archived(source, [
          { event, email: "ada@x.io", timestamp: at, asm_group_id: 42, sg_event_id: `${event}-${at}` },
        ]);
      const unsubscribe = await delivery("group_unsubscribe", now);
      const resubscribe = await delivery("group_resubscribe", now + 1);
      // The unsubscribe's transaction has done its work and not committed when the resubscribe's runs.
      let commitUnsubscribe!: () => void;
      const unsubscribed = new Promise<void>((r) => {
        commitUnsubscribe = r;
      });
      let resubscribeDone = false;
      // The group lock (advisory, namespace "HGRP") as pg_locks shows it: granted to one session, and
      // waited for by another.
      const groupLocks = async (granted: boolean) =>
        (
          await query<{ n: number }>(
            db,
            sql`select count(*)::int as n from pg_locks
              where locktype = 'advisory' and classid = ${0x48475250}::oid and granted = ${granted}
                and database = (select oid from pg_database where datname = current_database())`,
          )
        )[0]!.n;
      const first = db.transaction(async (tx) => {
        await processDeliveries(tx, [unsubscribe]);
        await unsubscribed;
      });
      await eventually(
        async () => (await groupLocks(true)) > 0,
        10_000,
        "the unsubscribe holds its group lock",
      );
      const second = other.db.transaction(async (tx) => {
        await processDeliveries(tx, [resubscribe]);
        resubscribeDone = true;
      });
      await eventually(async () => (await groupLocks(false)) > 0, 10_000, "the resubscribe waits for it");
      // It waits for the unsubscribe's commit, so it sees that suppression and lifts it.
      expect(resubscribeDone).toBe(false);
      commitUnsubscribe();
      await Promise.all([first, second]);
      expect(
        await count(
          db,
          "communication_suppressions",
          `tenant_id = '${tenantId}' and reason = 'group_unsubscribe'`,
        ),
      ).toBe(0);
    } finally {
      await other.close();
    }
  }, 30_000);
});
