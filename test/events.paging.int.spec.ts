import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { type Database, openDatabase } from "../src/db/client.js";
import { preparePartitions } from "../src/db/partitions.js";
import { withTenant } from "../src/db/tenant.js";
import { writeEvents } from "../src/events/write.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { bearer, call } from "./support/http.js";

const adminToken = "events-paging-admin-token-0123456789";
const day = 86_400_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The never-skip invariant under concurrent writers: every event committed before the first page was read
 * appears exactly once across the pages, whatever the writers do meanwhile — including transactions held
 * open for a while that commit events with older times than the pages already passed.
 */
describe.skipIf(!hasPostgres())("event pages under concurrent writers on postgres", () => {
  let t: TestDatabase;
  let writers: Database;
  let h: HeraldApp;
  let key: string;
  let tenantId: string;

  beforeAll(async () => {
    t = await createTestDatabase("postgres");
    writers = await openDatabase({ url: t.url, poolSize: 12 });
    h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1_000_000 } });
    const created = await call(h.app, {
      method: "POST",
      url: "/api/v1/admin/tenants",
      headers: bearer(adminToken),
      payload: { name: "busy" },
    });
    key = created.body.api_key;
    tenantId = created.body.tenant.id;
    await preparePartitions(writers.db, ["events"], [new Date(Date.now() - 6 * day), new Date()]);
  });
  afterAll(async () => {
    await h?.app.close();
    await writers?.close();
    await t?.drop();
  });

  /** Eight writers until `stop`: half commit at once, half hold their transaction open 50–250 ms first. */
  function startWriters(committed: Map<string, string>) {
    let stopped = false;
    const loops = Array.from({ length: 8 }, async (_, w) => {
      let n = 0;
      while (!stopped) {
        const hold = w % 2 === 1;
        const ids = await withTenant(writers.db, tenantId, async (tx) => {
          const results = await writeEvents(
            tx,
            Array.from({ length: 1 + (n % 4) }, (_, i) => ({
              tenantId,
              // Mostly older than now: they land among pages already read.
              eventType: i % 2 === 0 ? "message.sent" : "order.placed",
              source: "system" as const,
              timestamp: new Date(Date.now() - Math.floor(Math.random() * 5 * day)),
              payload: { w, n, i },
            })),
          );
          if (hold) await sleep(50 + Math.floor(Math.random() * 200));
          return results.map((r) => [r.event.id, r.event.event_type] as const);
        });
        for (const [id, type] of ids) committed.set(id, type);
        n += 1;
      }
    });
    return async () => {
      stopped = true;
      await Promise.all(loops);
    };
  }

  async function readAll(query: Record<string, string>) {
    const seen: string[] = [];
    let cursor: string | null = null;
    let total: number | undefined;
    do {
      const params = new URLSearchParams({ ...query, limit: "25", ...(cursor ? { cursor } : {}) });
      const page = await call(h.app, {
        method: "GET",
        url: `/api/v1/events?${params}`,
        headers: bearer(key),
      });
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      total ??= page.body.total;
      seen.push(...(page.body.events as { id: string }[]).map((e) => e.id));
      cursor = page.body.next_cursor;
      await sleep(3); // let the writers commit between pages
    } while (cursor !== null);
    return { seen, total: total! };
  }

  it("shows every event committed before the first page exactly once, in both orders and with a filter", async () => {
    const committed = new Map<string, string>();
    const stop = startWriters(committed);
    try {
      while (committed.size < 400) await sleep(20);
      for (const query of [{}, { order: "asc" }, { type: "message.*" }] as Record<string, string>[]) {
        // Committed before the first page, and selected by the filter.
        const before = [...committed].filter(([, type]) => !("type" in query) || type.startsWith("message."));
        const { seen, total } = await readAll(query);
        expect(new Set(seen).size).toBe(seen.length); // nothing twice
        const shown = new Set(seen);
        expect(before.filter(([id]) => !shown.has(id))).toEqual([]); // nothing skipped
        // The pages are exactly the set the total counted.
        expect(seen.length).toBe(total);
        expect(seen.length).toBeGreaterThanOrEqual(before.length);
        // And only what the filter selects.
        if ("type" in query)
          expect(
            seen.filter((id) => committed.has(id) && !committed.get(id)!.startsWith("message.")),
          ).toEqual([]);
      }
    } finally {
      await stop();
    }
    expect(committed.size).toBeGreaterThan(400);
  }, 120_000);
});
