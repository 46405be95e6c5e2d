import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/client.js";
import { type LogPosition, logStart, readLog } from "../src/events/read.js";
import { writeEvents } from "../src/events/write.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { makeTenant } from "./support/fixtures.js";
import { eventually, sleep } from "./support/wait.js";

/**
 * 8 writers hold their transactions open for random times while a position-based reader polls: the reader
 * must see every committed event exactly once, in (transaction, position) order — never skipping one that
 * committed late with a lower position.
 */
describe.skipIf(!hasPostgres())("position-based reading under concurrent writers", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("postgres");
  });
  afterAll(() => t?.drop());

  it("sees every committed event exactly once, in order", async () => {
    const tenant = await makeTenant(t.database.db);
    const writers = await Promise.all(
      Array.from({ length: 8 }, () => openDatabase({ url: t.url, poolSize: 2 })),
    );
    const reader = await openDatabase({ url: t.url, poolSize: 1 });
    const committed = new Set<string>();
    let writing = true;
    const write = async (w: (typeof writers)[number], index: number) => {
      for (let round = 0; writing; round++) {
        const ids = await w.db
          .transaction(async (tx) => {
            const results = await writeEvents(
              tx,
              Array.from({ length: 1 + (round % 3) }, (_, i) => ({
                tenantId: tenant,
                eventType: "skip.test",
                source: "system" as const,
                payload: { writer: index, round, i },
              })),
            );
            // Jitter, not a wait: transactions stay open for random times (at most 40 ms), so they commit
            // out of position order, which is what the reader must survive.
            await sleep(Math.random() * 40);
            if (round % 7 === 3) throw new Error("rolled back on purpose");
            return results.map((r) => r.event.id);
          })
          .catch(() => [] as string[]);
        for (const id of ids) committed.add(id);
      }
    };
    const seen: string[] = [];
    let position: LogPosition = logStart;
    let last: LogPosition = logStart;
    const read = async () => {
      const { events, next } = await readLog(reader.db, position, 50, tenant);
      for (const e of events) {
        seen.push(e.id);
        const order = { transactionId: e.transaction_id, position: e.position };
        const ahead =
          BigInt(order.transactionId) > BigInt(last.transactionId) ||
          (order.transactionId === last.transactionId && order.position > last.position);
        expect(ahead).toBe(true);
        last = order;
      }
      position = next;
      return events.length;
    };
    const writing$ = Promise.all(writers.map((w, i) => write(w, i)));
    // Read while the writers run, until 2,000 events have committed (about 3 s of interleavings).
    await eventually(
      async () => {
        await read();
        return committed.size >= 2000;
      },
      20_000,
      "2,000 committed events",
    );
    writing = false;
    await writing$;
    // Catch up. The horizon is cluster-wide: a transaction open elsewhere (another test file) holds the
    // reader back, which is the point: it waits rather than skips. So read until it has caught up.
    await eventually(
      async () => {
        await read();
        return seen.length >= committed.size;
      },
      15_000,
      "the reader caught up",
    ).catch(() => undefined); // the assertions below say what is missing
    await Promise.all([...writers, reader].map((d) => d.close()));

    expect(committed.size).toBeGreaterThan(100);
    expect(seen.length).toBe(new Set(seen).size); // exactly once
    expect(new Set(seen)).toEqual(committed); // nothing skipped, nothing rolled back
  }, 30_000);
});
