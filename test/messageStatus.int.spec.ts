import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { replacesStatus, type StatusPoint, statusRank } from "../src/domain/messageStatus.js";
import { messageStatuses } from "../src/domain/vocabularies.js";
import { storeMessageEvents } from "../src/messages/storeEvents.js";
import { normalizeEvent } from "../src/providers/sendgrid.js";
import { createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count, makeTenant } from "./support/fixtures.js";

describe("message status rules", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("pglite");
  });
  afterAll(() => t?.drop());

  it("ranks statuses the same in SQL (herald_status_rank) as in TypeScript", async () => {
    const rows = await query<{ status: string; rank: number }>(
      t.database.db,
      sql`select s as status, herald_status_rank(s) as rank from unnest(${`{${messageStatuses.join(",")}}`}::text[]) s`,
    );
    expect(Object.fromEntries(rows.map((r) => [r.status, Number(r.rank)]))).toEqual(statusRank);
  });

  it("follows the contract: failures replace below opened, complaints replace anything and each other", () => {
    const at = (s: string) => new Date(`2026-11-01T00:00:${s}Z`);
    const p = (status: StatusPoint["status"], s = "00"): StatusPoint => ({ status, at: at(s) });
    expect(replacesStatus(p("delivered"), p("deferred", "59"))).toBe(false);
    expect(replacesStatus(p("delivered"), p("bounced"))).toBe(true);
    expect(replacesStatus(p("opened"), p("bounced", "59"))).toBe(false);
    expect(replacesStatus(p("clicked"), p("unsubscribed"))).toBe(true);
    expect(replacesStatus(p("spam_reported", "10"), p("unsubscribed", "20"))).toBe(true);
    expect(replacesStatus(p("unsubscribed", "20"), p("spam_reported", "10"))).toBe(false);
    expect(replacesStatus(p("spam_reported"), p("clicked", "59"))).toBe(false);
  });

  it("stores a redelivered event once even when its time lands in another month's partition", async () => {
    const tenantId = await makeTenant(t.database.db);
    const first = normalizeEvent(
      { event: "open", sg_event_id: "across", email: "a@x.io", timestamp: 1706745599 },
      new Date(),
    ); // 2024-01-31 23:59:59Z
    const again = normalizeEvent(
      { event: "open", sg_event_id: "across", email: "a@x.io", timestamp: 1706745600 },
      new Date(),
    ); // 2024-02-01
    const base = { tenantId, provider: "sendgrid", deliveryId: null, raw: null };
    expect(await storeMessageEvents(t.database.db, [{ ...first, ...base }])).toHaveLength(1);
    expect(await storeMessageEvents(t.database.db, [{ ...again, ...base }])).toHaveLength(0);
    expect(await count(t.database.db, "message_events", "dedupe_key = 'across'")).toBe(1);
    // The old month's partition was made on demand.
    expect(await count(t.database.db, "pg_class", "relname = 'message_events_2024_01'")).toBe(1);
  });
});
