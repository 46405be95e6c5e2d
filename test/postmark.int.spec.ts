import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { backends } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`./fixtures/postmark/${name}`, import.meta.url), "utf8"));
const credentials = { username: "postmark-hook", password: "pa55:word-0123456789" };
const basic = (username: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`,
});
const valid = basic(credentials.username, credentials.password);

/**
 * Postmark's webhooks through the real route and the processor: Basic auth at the door (nothing stored when
 * it fails), each event stored once however often it arrives, linked by `MessageID`, the status moving only
 * forward, suppressions, and `herald reprocess` over the archive.
 */
for (const backend of backends()) {
  describe(`Postmark webhooks on ${backend}`, () => {
    const k = ingestHarness(backend);

    async function tenantWithPostmark(name: string) {
      const { key, tenantId } = await k.tenantWithSource(name, false);
      const source = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "postmark", verification: credentials },
      });
      expect(source.status).toBe(201);
      return { key, tenantId, url: source.body.url as string, sourceId: source.body.id as string };
    }

    const post = (url: string, event: object, headers: Record<string, string> = valid) =>
      call(k.h.app, {
        method: "POST",
        url,
        payload: JSON.stringify(event),
        headers: { "content-type": "application/json", ...headers },
      });
    const deliveries = (tenantId: string) =>
      count(k.t.database.db, "webhook_deliveries", `tenant_id = '${tenantId}'`);
    const events = (tenantId: string) =>
      query<{
        type: string;
        dedupe_key: string;
        outbound_message_id: string | null;
        recipient: string | null;
      }>(
        k.t.database.db,
        sql`select type, dedupe_key, outbound_message_id, recipient from message_events
          where tenant_id = ${tenantId} order by event_at, type`,
      );
    const status = async (key: string, id: string) =>
      (await call(k.h.app, { method: "GET", url: `/api/v1/messages/${id}`, headers: bearer(key) })).body
        .status;
    const suppressions = async (key: string) =>
      (
        await call(k.h.app, { method: "GET", url: "/api/v1/suppressions", headers: bearer(key) })
      ).body.suppressions.map((s: { address: string; reason: string }) => `${s.address} ${s.reason}`);

    it("refuses wrong or missing credentials with a 401, storing nothing", async () => {
      const a = await tenantWithPostmark("postmark-auth");
      for (const headers of [
        basic(credentials.username, "wrong"),
        basic("someone-else", credentials.password),
        {} as Record<string, string>,
        { authorization: "Bearer pa55:word-0123456789" },
      ]) {
        const answer = await post(a.url, fixture("delivery.json"), headers);
        expect(answer.status, JSON.stringify(headers)).toBe(401);
        expect(answer.body.code).toBe("invalid_signature");
      }
      expect(await deliveries(a.tenantId)).toBe(0);
      const accepted = await post(a.url, fixture("delivery.json"));
      expect(accepted.status).toBe(200);
      expect(accepted.body).toEqual({ delivery_id: expect.any(Number), events: 1 });
      expect(await deliveries(a.tenantId)).toBe(1);
      // The credentials are not archived with the delivery.
      const [row] = await query<{ headers: unknown }>(
        k.t.database.db,
        sql`select headers from webhook_deliveries where tenant_id = ${a.tenantId}`,
      );
      expect(JSON.stringify(row!.headers)).not.toMatch(/authorization|Basic/i);
    });

    it("stores a delivery posted three times at once as one event of each kind", async () => {
      const a = await tenantWithPostmark("postmark-concurrent");
      for (const name of ["delivery.json", "bounce-soft.json", "open.json"]) {
        const answers = await Promise.all([1, 2, 3].map(() => post(a.url, fixture(name))));
        expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      }
      await k.processAll();
      expect(await deliveries(a.tenantId)).toBe(9);
      expect((await events(a.tenantId)).map((e) => e.type).sort()).toEqual(["deferred", "delivered", "open"]);
    });

    it("links events to the message registered with their MessageID, its status moving only forward", async () => {
      const a = await tenantWithPostmark("postmark-linking");
      const registered = await k.register(a.key, {
        channel: "email",
        provider: "postmark",
        to: "John@Example.com",
        provider_message_id: "0a129aee-e1cd-480d-b08d-4f48548ff48d",
      });
      expect(registered.status).toBe(201);
      const id = registered.body.id as string;
      // Out of order: the open first, then the delivery and a late transient bounce.
      for (const [name, expected] of [
        ["open.json", "opened"],
        ["delivery.json", "opened"],
        ["bounce-transient.json", "opened"],
        ["click.json", "clicked"],
        ["spam-complaint.json", "spam_reported"],
        ["delivery.json", "spam_reported"],
      ] as const) {
        expect((await post(a.url, fixture(name))).status).toBe(200);
        await k.processAll();
        expect(await status(a.key, id), name).toBe(expected);
      }
      const stored = await events(a.tenantId);
      expect(stored.map((e) => e.type).sort()).toEqual([
        "click",
        "deferred",
        "delivered",
        "open",
        "spamreport",
      ]);
      expect(stored.every((e) => e.outbound_message_id === id && e.recipient === "john@example.com")).toBe(
        true,
      );
      expect(await suppressions(a.key)).toEqual(["john@example.com spamreport"]);
    });

    it("suppresses the address of a hard bounce and of an unsubscribe, not of a soft bounce or a block", async () => {
      const a = await tenantWithPostmark("postmark-suppressions");
      const as = (name: string, Email: string, ID: number) => ({ ...fixture(name), Email, ID });
      for (const event of [
        as("bounce-hard.json", "hard@example.com", 1),
        as("bounce-soft.json", "soft@example.com", 2),
        as("bounce-blocked.json", "blocked@example.com", 3),
        { ...fixture("subscription-change.json"), Recipient: "leaver@example.com" },
      ])
        expect((await post(a.url, event)).status).toBe(200);
      await k.processAll();
      expect((await suppressions(a.key)).sort()).toEqual([
        "hard@example.com bounce",
        "leaver@example.com unsubscribe",
      ]);
    });

    it("is reprocessed from the archive: every event once, whichever runs first", async () => {
      const a = await tenantWithPostmark("postmark-reprocess");
      const names = [
        "delivery.json",
        "bounce-hard.json",
        "open.json",
        "click.json",
        "subscription-change.json",
      ];
      for (const name of names) expect((await post(a.url, fixture(name))).status).toBe(200);
      const first = await reprocess(k.t.database.db, { sourceId: a.sourceId });
      expect(first).toEqual({ deliveries: 5, stored: 5, failed: [] });
      await k.processAll();
      expect(await reprocess(k.t.database.db, { sourceId: a.sourceId })).toEqual({
        deliveries: 5,
        stored: 0,
        failed: [],
      });
      expect((await events(a.tenantId)).map((e) => e.type).sort()).toEqual([
        "bounce",
        "click",
        "delivered",
        "open",
        "unsubscribe",
      ]);
    });
  });
}
