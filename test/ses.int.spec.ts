import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { processAllDeliveries } from "./support/ingestHarness.js";
import {
  type Envelope,
  notification,
  sesEvent,
  signed,
  snsKeys,
  subscriptionConfirmation,
  topicArn,
} from "./support/sns.js";

const adminToken = "ses-admin-token-0123456789abcdef";
const keys = snsKeys();

/**
 * SES notifications through the webhook route (SNS's `text/plain` bodies), the processor and `herald
 * reprocess`, on both databases: the certificate is the test's (no network), the subscription confirmations'
 * visits recorded.
 */
for (const backend of backends()) {
  describe(`SES via SNS on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    const certificatesAsked: string[] = [];
    const visited: string[] = [];

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({
        database: t.database,
        config: { adminToken, bodyLimitBytes: 5 * 1024 * 1024 },
        sns: {
          snsCertificate: async (url) => {
            certificatesAsked.push(url);
            return keys.certificatePem;
          },
          visit: async (url) => {
            visited.push(url);
          },
        },
      });
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    async function tenantWithSes(name: string, verification: object | null = { topic_arn: topicArn }) {
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name },
      });
      const key = created.body.api_key as string;
      const source = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "ses", ...(verification ? { verification } : {}) },
      });
      expect(source.status).toBe(201);
      return {
        key,
        tenantId: created.body.tenant.id as string,
        url: source.body.url as string,
        sourceId: source.body.id as string,
      };
    }

    const post = (url: string, envelope: Envelope | string) =>
      call(h.app, {
        method: "POST",
        url,
        payload: typeof envelope === "string" ? envelope : JSON.stringify(envelope),
        headers: { "content-type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification" },
      });

    const processAll = () => processAllDeliveries(t.database);

    const stored = (tenantId: string) =>
      query<{
        type: string;
        recipient: string | null;
        dedupe_key: string;
        outbound_message_id: string | null;
      }>(
        t.database.db,
        sql`select type, recipient, dedupe_key, outbound_message_id from message_events
          where tenant_id = ${tenantId} order by event_at, recipient`,
      );
    const deliveries = (tenantId: string) =>
      count(t.database.db, "webhook_deliveries", `tenant_id = '${tenantId}'`);
    const register = async (key: string, to: string, providerMessageId: string) => {
      const registered = await call(h.app, {
        method: "POST",
        url: "/api/v1/messages",
        headers: bearer(key),
        payload: { channel: "email", provider: "ses", to, provider_message_id: providerMessageId },
      });
      expect(registered.status).toBe(201);
      return registered.body.id as string;
    };
    const statusOf = async (key: string, id: string) =>
      (await call(h.app, { method: "GET", url: `/api/v1/messages/${id}`, headers: bearer(key) })).body.status;
    const suppressed = async (key: string, address: string) =>
      (
        await call(h.app, {
          method: "GET",
          url: `/api/v1/suppressions/check?channel=email&address=${encodeURIComponent(address)}`,
          headers: bearer(key),
        })
      ).body;

    it("stores one event per recipient, linked to the message SES sent, and suppresses bounced and complaining addresses", async () => {
      const a = await tenantWithSes("ses-linking");
      const mailId = `0100018c-${randomUUID()}-000000`;
      const jane = await register(a.key, "jane@example.com", mailId);
      const mary = await register(a.key, "mary@example.com", mailId);
      const recipients = ["jane@example.com", "mary@example.com", "rich@example.com"];
      const at = new Date();
      const send = signed(notification(sesEvent("Send", mailId, recipients, { send: {} }, at)), keys);
      const answer = await post(a.url, send);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ events: 3 });
      const bounce = sesEvent(
        "Bounce",
        mailId,
        recipients,
        {
          bounce: {
            bounceType: "Permanent",
            bounceSubType: "General",
            bouncedRecipients: [
              {
                emailAddress: "jane@example.com",
                status: "5.1.1",
                diagnosticCode: "smtp; 550 5.1.1 user unknown",
              },
            ],
            timestamp: new Date(at.getTime() + 2000).toISOString(),
          },
        },
        at,
      );
      const complaint = {
        notificationType: "Complaint",
        mail: { messageId: mailId, destination: recipients, timestamp: at.toISOString() },
        complaint: {
          complainedRecipients: [{ emailAddress: "mary@example.com" }],
          complaintFeedbackType: "abuse",
          timestamp: new Date(at.getTime() + 3000).toISOString(),
        },
      };
      for (const message of [bounce, complaint])
        expect((await post(a.url, signed(notification(message), keys, "1"))).status).toBe(200);
      await processAll();

      const events = await stored(a.tenantId);
      expect(events.map((e) => [e.type, e.recipient])).toEqual([
        ["processed", "jane@example.com"],
        ["processed", "mary@example.com"],
        ["processed", "rich@example.com"],
        ["bounce", "jane@example.com"],
        ["spamreport", "mary@example.com"],
      ]);
      expect(events.filter((e) => e.outbound_message_id !== null)).toHaveLength(4);
      expect(await statusOf(a.key, jane)).toBe("bounced");
      expect(await statusOf(a.key, mary)).toBe("spam_reported");
      expect(await suppressed(a.key, "jane@example.com")).toMatchObject({
        suppressed: true,
        reasons: ["bounce"],
      });
      expect(await suppressed(a.key, "mary@example.com")).toMatchObject({
        suppressed: true,
        reasons: ["spamreport"],
      });
      expect(await suppressed(a.key, "rich@example.com")).toMatchObject({ suppressed: false });
    });

    it("moves a message's status only forward, whatever order SNS delivers in", async () => {
      const a = await tenantWithSes("ses-forward");
      const mailId = `0100018c-${randomUUID()}-000000`;
      const id = await register(a.key, "reader@example.com", mailId);
      const at = Date.now() - 60_000;
      const time = (s: number) => new Date(at + s * 1000).toISOString();
      const to = ["reader@example.com"];
      // Open, then the delivery and the send that came before it, then a late delay.
      for (const message of [
        sesEvent("Open", mailId, to, {
          open: { timestamp: time(30), ipAddress: "192.0.2.1", userAgent: "UA" },
        }),
        sesEvent("Delivery", mailId, to, { delivery: { timestamp: time(10), recipients: to } }),
        sesEvent("Send", mailId, to, { send: {} }),
        sesEvent("DeliveryDelay", mailId, to, {
          deliveryDelay: {
            timestamp: time(5),
            delayType: "MailboxFull",
            delayedRecipients: [{ emailAddress: to[0] }],
          },
        }),
      ]) {
        expect((await post(a.url, signed(notification(message), keys))).status).toBe(200);
        await processAll();
        expect(await statusOf(a.key, id)).toBe("opened");
      }
      expect((await stored(a.tenantId)).map((e) => e.type).sort()).toEqual([
        "deferred",
        "delivered",
        "open",
        "processed",
      ]);
    });

    it("stores each event once when the same SNS message arrives three times at once", async () => {
      const a = await tenantWithSes("ses-concurrent");
      const envelope = signed(
        notification(
          sesEvent("Delivery", "m-concurrent", ["a@example.com", "b@example.com"], {
            delivery: { recipients: ["a@example.com", "b@example.com"] },
          }),
        ),
        keys,
      );
      const answers = await Promise.all([1, 2, 3].map(() => post(a.url, envelope)));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      await processAll();
      const events = await stored(a.tenantId);
      expect(events.map((e) => e.dedupe_key)).toEqual([
        `${envelope.MessageId}/a@example.com`,
        `${envelope.MessageId}/b@example.com`,
      ]);
      expect(await deliveries(a.tenantId)).toBe(3);
    });

    it("refuses 401, storing nothing: a wrong signature, another topic, a certificate off SNS, a stale message", async () => {
      const a = await tenantWithSes("ses-refusals");
      const message = sesEvent("Send", "m-refused", ["a@example.com"], { send: {} });
      const good = signed(notification(message), keys);
      const asked = certificatesAsked.length;
      const refusals: [Envelope, boolean][] = [
        [{ ...good, Message: good.Message!.replace("a@example.com", "z@example.com") }, true],
        [signed(notification(message), snsKeys()), true],
        [
          signed(notification(message, { TopicArn: "arn:aws:sns:us-east-1:999999999999:theirs" }), keys),
          false,
        ],
        [signed(notification(message, {}, new Date(Date.now() - 2 * 3600 * 1000)), keys), false],
        ...[
          "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
          "http://sns.us-east-1.amazonaws.com/x.pem",
          "https://sns.us-east-1.amazonaws.com/x.txt",
          "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
          "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
        ].map((url): [Envelope, boolean] => [
          signed(notification(message, { SigningCertURL: url }), keys),
          false,
        ]),
      ];
      for (const [envelope, fetches] of refusals) {
        const before = certificatesAsked.length;
        expectProblem(await post(a.url, envelope), 401, "invalid_signature");
        expect(certificatesAsked.length - before, envelope.SigningCertURL).toBe(fetches ? 1 : 0);
      }
      expect(
        certificatesAsked.slice(asked).every((url) => url.startsWith("https://sns.us-east-1.amazonaws.com/")),
      ).toBe(true);
      expect(await deliveries(a.tenantId)).toBe(0);
      expect(await count(t.database.db, "message_events", `tenant_id = '${a.tenantId}'`)).toBe(0);
    });

    it("confirms a subscription to the source's topic only, archiving nothing", async () => {
      const a = await tenantWithSes("ses-subscribe");
      const confirmation = signed(subscriptionConfirmation(), keys);
      const answer = await post(a.url, confirmation);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ control: "SubscriptionConfirmation" });
      expect(visited).toContain(confirmation.SubscribeURL);
      const count0 = visited.length;
      // Someone else's topic: refused before anything is visited.
      const foreign = signed(subscriptionConfirmation("arn:aws:sns:us-east-1:999999999999:theirs"), keys);
      expectProblem(await post(a.url, foreign), 401, "invalid_signature");
      // Unsigned, on an unverified source: answered, never visited.
      const open = await tenantWithSes("ses-unverified", null);
      expect((await post(open.url, subscriptionConfirmation())).status).toBe(200);
      // An unsubscribe confirmation: noted, nothing done.
      const unsubscribe = signed({ ...subscriptionConfirmation(), Type: "UnsubscribeConfirmation" }, keys);
      expect((await post(a.url, unsubscribe)).body).toMatchObject({ control: "UnsubscribeConfirmation" });
      expect(visited.length).toBe(count0);
      expect(await deliveries(a.tenantId)).toBe(0);
      expect(await deliveries(open.tenantId)).toBe(0);
    });

    it("answers 503 when the subscription cannot be confirmed (SNS sends it again)", async () => {
      const local = await buildApp({
        database: t.database,
        config: { adminToken, bodyLimitBytes: 1024 * 1024 },
        sns: {
          snsCertificate: async () => keys.certificatePem,
          visit: async () => {
            throw new Error("connect ETIMEDOUT");
          },
        },
      });
      try {
        const a = await tenantWithSes("ses-unconfirmed");
        const answer = await call(local.app, {
          method: "POST",
          url: a.url,
          payload: JSON.stringify(signed(subscriptionConfirmation(), keys)),
          headers: { "content-type": "text/plain" },
        });
        expectProblem(answer, 503, "unavailable");
      } finally {
        await local.app.close();
      }
    });

    it("verifies against HERALD_SNS_CERTIFICATE_FILE when it is set, fetching nothing", async () => {
      const dir = mkdtempSync(join(tmpdir(), "herald-ses-int-"));
      const file = join(dir, "sns.pem");
      writeFileSync(file, keys.certificatePem);
      const local = await buildApp({
        database: t.database,
        config: { adminToken, bodyLimitBytes: 1024 * 1024, snsCertificateFile: file },
      });
      try {
        const a = await tenantWithSes("ses-certificate-file");
        const message = sesEvent("Send", "m-file", ["a@example.com"], { send: {} });
        const send = (envelope: Envelope) =>
          call(local.app, {
            method: "POST",
            url: a.url,
            payload: JSON.stringify(envelope),
            headers: { "content-type": "text/plain" },
          });
        expect((await send(signed(notification(message), keys))).status).toBe(200);
        expectProblem(await send(signed(notification(message), snsKeys())), 401, "invalid_signature");
        const offSns = signed(notification(message, { SigningCertURL: "https://example.com/x.pem" }), keys);
        expectProblem(await send(offSns), 401, "invalid_signature");
        expect(await deliveries(a.tenantId)).toBe(1);
      } finally {
        await local.app.close();
      }
    });

    it("takes an unverified source's notifications as they come", async () => {
      const open = await tenantWithSes("ses-open", null);
      const message = sesEvent("Click", "m-open", ["a@example.com"], {
        click: { link: "https://example.com/x", ipAddress: "192.0.2.9" },
      });
      expect((await post(open.url, notification(message))).status).toBe(200);
      await processAll();
      expect((await stored(open.tenantId)).map((e) => e.type)).toEqual(["click"]);
    });

    it("reprocesses SES's archived deliveries: the same events, stored once", async () => {
      const a = await tenantWithSes("ses-reprocess");
      const recipients = ["x@example.com", "y@example.com"];
      const mailId = `0100018c-${randomUUID()}-000000`;
      const id = await register(a.key, "y@example.com", mailId);
      expect(
        (
          await post(
            a.url,
            signed(
              notification(sesEvent("Delivery", mailId, recipients, { delivery: { recipients } })),
              keys,
            ),
          )
        ).status,
      ).toBe(200);
      // Processed by `herald reprocess` rather than the processor, then again: nothing new the second time.
      const first = await reprocess(t.database.db, { sourceId: a.sourceId });
      expect(first).toMatchObject({ deliveries: 1, stored: 2, failed: [] });
      const second = await reprocess(t.database.db, { sourceId: a.sourceId });
      expect(second).toMatchObject({ deliveries: 1, stored: 0, failed: [] });
      expect((await stored(a.tenantId)).map((e) => [e.type, e.recipient])).toEqual([
        ["delivered", "x@example.com"],
        ["delivered", "y@example.com"],
      ]);
      expect(await statusOf(a.key, id)).toBe("delivered");
    });
  });
}
