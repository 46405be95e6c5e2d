import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { backends } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";

const secret = `whsec_${randomBytes(24).toString("base64")}`;
const emailId = "4ef9a417-02e9-4d39-ad75-9611e0fcc33c";
const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`./fixtures/resend/${name}`, import.meta.url), "utf8"));

/** Headers of a request Resend signed (by the Standard Webhooks library) with `key`, at `at`. */
function svixHeaders(id: string, body: string, at = new Date(), key = secret): Record<string, string> {
  return {
    "svix-id": id,
    "svix-timestamp": String(Math.floor(at.getTime() / 1000)),
    "svix-signature": new Webhook(key).sign(id, at, body),
  };
}

let ids = 0;
const nextId = () => `msg_${Date.now().toString(36)}${(ids++).toString(36).padStart(6, "0")}`;

/**
 * Resend's webhooks through the real route and the processor: Svix signatures at the door (nothing stored
 * when they fail), keyed by `svix-id` (a retry is the same event), linked by `data.email_id`, the status
 * moving only forward, suppressions, and `herald reprocess` over the archive.
 */
for (const backend of backends()) {
  describe(`Resend webhooks on ${backend}`, () => {
    const k = ingestHarness(backend);

    async function tenantWithResend(name: string) {
      const { key, tenantId } = await k.tenantWithSource(name, false);
      const source = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "resend", verification: { secret } },
      });
      expect(source.status).toBe(201);
      return { key, tenantId, url: source.body.url as string, sourceId: source.body.id as string };
    }

    const post = (url: string, body: string, headers: Record<string, string>) =>
      call(k.h.app, {
        method: "POST",
        url,
        payload: body,
        headers: { "content-type": "application/json", ...headers },
      });
    /** A fixture posted as Resend sends it: its own `svix-id`, signed now. */
    const send = (url: string, event: object, id = nextId()) => {
      const body = JSON.stringify(event);
      return post(url, body, svixHeaders(id, body));
    };
    const deliveries = (tenantId: string) =>
      count(k.t.database.db, "webhook_deliveries", `tenant_id = '${tenantId}'`);
    const events = (tenantId: string) =>
      query<{ type: string; dedupe_key: string; outbound_message_id: string | null }>(
        k.t.database.db,
        sql`select type, dedupe_key, outbound_message_id from message_events
          where tenant_id = ${tenantId} order by event_at, type`,
      );
    const status = async (key: string, id: string) =>
      (await call(k.h.app, { method: "GET", url: `/api/v1/messages/${id}`, headers: bearer(key) })).body
        .status;
    const suppressions = async (key: string) =>
      (
        await call(k.h.app, { method: "GET", url: "/api/v1/suppressions", headers: bearer(key) })
      ).body.suppressions.map((s: { address: string; reason: string }) => `${s.address} ${s.reason}`);

    it("refuses a wrong signature, a stale timestamp or missing headers with a 401, storing nothing", async () => {
      const a = await tenantWithResend("resend-auth");
      const body = JSON.stringify(fixture("email.delivered.json"));
      const other = `whsec_${randomBytes(24).toString("base64")}`;
      const good = svixHeaders("msg_auth_1", body);
      for (const headers of [
        svixHeaders("msg_auth_1", body, new Date(), other),
        svixHeaders("msg_auth_1", body, new Date(Date.now() - 10 * 60_000)),
        svixHeaders("msg_auth_1", body, new Date(Date.now() + 10 * 60_000)),
        { ...good, "svix-id": "msg_auth_2" },
        { "svix-id": good["svix-id"]!, "svix-timestamp": good["svix-timestamp"]! },
        {} as Record<string, string>,
      ]) {
        const answer = await post(a.url, body, headers);
        expect(answer.status, JSON.stringify(headers)).toBe(401);
        expect(answer.body.code).toBe("invalid_signature");
      }
      expect((await post(a.url, `${body}\n`, good)).status).toBe(401);
      expect(await deliveries(a.tenantId)).toBe(0);
      const accepted = await post(a.url, body, good);
      expect(accepted.status).toBe(200);
      expect(accepted.body).toEqual({ delivery_id: expect.any(Number), events: 1 });
      expect(await deliveries(a.tenantId)).toBe(1);
    });

    it("stores a delivery posted three times at once, and Resend's retry of it, as one event keyed by svix-id", async () => {
      const a = await tenantWithResend("resend-concurrent");
      const body = JSON.stringify(fixture("email.delivered.json"));
      const headers = svixHeaders("msg_concurrent_1", body);
      const answers = await Promise.all([1, 2, 3].map(() => post(a.url, body, headers)));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      // A retry: the same id, signed again later.
      expect(
        (await post(a.url, body, svixHeaders("msg_concurrent_1", body, new Date(Date.now() + 1000)))).status,
      ).toBe(200);
      await k.processAll();
      expect(await deliveries(a.tenantId)).toBe(4);
      expect(await events(a.tenantId)).toEqual([
        { type: "delivered", dedupe_key: "msg_concurrent_1", outbound_message_id: null },
      ]);
    });

    it("links events to the message registered with their email_id, its status moving only forward", async () => {
      const a = await tenantWithResend("resend-linking");
      const registered = await k.register(a.key, {
        channel: "email",
        provider: "resend",
        to: "delivered@example.com",
        provider_message_id: emailId,
      });
      expect(registered.status).toBe(201);
      const id = registered.body.id as string;
      for (const [name, expected] of [
        ["email.sent.json", "processed"],
        ["email.opened.json", "opened"],
        ["email.delivered.json", "opened"],
        ["email.delivery_delayed.json", "opened"],
        ["email.clicked.json", "clicked"],
        ["email.complained.json", "spam_reported"],
      ] as const) {
        expect((await send(a.url, fixture(name))).status).toBe(200);
        await k.processAll();
        expect(await status(a.key, id), name).toBe(expected);
      }
      const stored = await events(a.tenantId);
      expect(stored.map((e) => e.type).sort()).toEqual([
        "click",
        "deferred",
        "delivered",
        "open",
        "processed",
        "spamreport",
      ]);
      expect(stored.every((e) => e.outbound_message_id === id && e.dedupe_key.startsWith("msg_"))).toBe(true);
      expect(await suppressions(a.key)).toEqual(["delivered@example.com spamreport"]);
    });

    it("suppresses a bounced address; inbound mail is kept as unknown and suppresses nothing", async () => {
      const a = await tenantWithResend("resend-suppressions");
      const bounced = fixture("email.bounced.json");
      const data = bounced.data as Record<string, unknown>;
      expect((await send(a.url, { ...bounced, data: { ...data, to: ["gone@example.com"] } })).status).toBe(
        200,
      );
      expect((await send(a.url, fixture("email.received.json"))).status).toBe(200);
      await k.processAll();
      expect(await suppressions(a.key)).toEqual(["gone@example.com bounce"]);
      expect((await events(a.tenantId)).map((e) => e.type).sort()).toEqual(["bounce", "unknown"]);
    });

    it("is reprocessed from the archive with the same keys (svix-id from the archived headers)", async () => {
      const a = await tenantWithResend("resend-reprocess");
      const names = ["email.sent.json", "email.delivered.json", "email.opened.json", "email.failed.json"];
      for (const [i, name] of names.entries())
        expect((await send(a.url, fixture(name), `msg_reprocess_${i}`)).status).toBe(200);
      expect(await reprocess(k.t.database.db, { sourceId: a.sourceId })).toEqual({
        deliveries: 4,
        stored: 4,
        failed: [],
      });
      await k.processAll();
      expect(await reprocess(k.t.database.db, { sourceId: a.sourceId })).toEqual({
        deliveries: 4,
        stored: 0,
        failed: [],
      });
      expect((await events(a.tenantId)).map((e) => e.dedupe_key).sort()).toEqual(
        names.map((_, i) => `msg_reprocess_${i}`),
      );
    });
  });
}
