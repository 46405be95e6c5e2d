import { sql } from "drizzle-orm";
import { getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { backends } from "./support/databases.js";
import { bearer, call } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";

const authToken = "9f2d7c31b8e04a6f5c1d2e3f4a5b6c7d";

/**
 * Twilio status callbacks through the webhook route and the processor: linked to the SMS message registered
 * with their `MessageSid`, stored once per sid + status + error code, and moving its status only forward
 * whatever order they arrive in (they carry no time: the status rank decides).
 */
for (const backend of backends()) {
  describe(`Twilio status callbacks on ${backend}`, () => {
    const k = ingestHarness(backend);

    async function tenantWithTwilio(name: string) {
      const { key, tenantId } = await k.tenantWithSource(name, false);
      const source = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "twilio", verification: { auth_token: authToken } },
      });
      expect(source.status).toBe(201);
      return { key, tenantId, url: source.body.url as string };
    }

    const callback = (url: string, sid: string, status: string, errorCode?: string) => {
      const params: Record<string, string> = {
        SmsSid: sid,
        SmsStatus: status,
        MessageStatus: status,
        To: "+14155550123",
        MessageSid: sid,
        AccountSid: "AC3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c",
        From: "+14155550100",
        ApiVersion: "2010-04-01",
        ...(errorCode ? { ErrorCode: errorCode } : {}),
      };
      return call(k.h.app, {
        method: "POST",
        url,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": getExpectedTwilioSignature(authToken, `http://localhost${url}`, params),
        },
        payload: new URLSearchParams(params).toString(),
      });
    };

    const message = async (key: string, id: string) =>
      (await call(k.h.app, { method: "GET", url: `/api/v1/messages/${id}`, headers: bearer(key) })).body;

    it("end at the same status in any order, each callback stored once", async () => {
      const a = await tenantWithTwilio("twilio-status");
      const orders = {
        SM00000000000000000000000000000001: ["sending", "sent", "delivered", "undelivered"],
        SM00000000000000000000000000000002: ["undelivered", "delivered", "sent", "sending"],
        SM00000000000000000000000000000003: ["sent", "undelivered", "sending", "delivered"],
      };
      const ids: Record<string, string> = {};
      for (const sid of Object.keys(orders)) {
        const registered = await call(k.h.app, {
          method: "POST",
          url: "/api/v1/messages",
          headers: bearer(a.key),
          payload: { channel: "sms", provider: "twilio", to: "+1 415 555 0123", provider_message_id: sid },
        });
        expect(registered.status).toBe(201);
        ids[sid] = registered.body.id;
      }
      // Each callback processed before the next arrives, so each meets the status the earlier ones left.
      for (const [sid, statuses] of Object.entries(orders)) {
        for (const status of [...statuses, statuses[0]!]) {
          // The last is Twilio retrying the first: the same callback again.
          const answer = await callback(a.url, sid, status, status === "undelivered" ? "30003" : undefined);
          expect(answer.status).toBe(200);
          await k.processAll();
        }
      }
      for (const sid of Object.keys(orders)) {
        const m = await message(a.key, ids[sid]!);
        expect(m.status, sid).toBe("undelivered");
        const events = await call(k.h.app, {
          method: "GET",
          url: `/api/v1/messages/${ids[sid]}/events`,
          headers: bearer(a.key),
        });
        expect(events.body.events.map((e: { type: string }) => e.type).sort(), sid).toEqual([
          "delivered",
          "sending",
          "sent",
          "undelivered",
        ]);
        expect(events.body.events.find((e: { type: string }) => e.type === "undelivered").reason).toBe(
          "30003",
        );
      }
      const stored = await query<{ n: number }>(
        k.t.database.db,
        sql`select count(*)::int as n from message_events where tenant_id = ${a.tenantId}`,
      );
      expect(stored[0]!.n).toBe(12);
    });

    it("wait for a message registered after its callbacks, then give it their status", async () => {
      const a = await tenantWithTwilio("twilio-early");
      const sid = "SM00000000000000000000000000000009";
      for (const status of ["delivered", "sent"]) {
        expect((await callback(a.url, sid, status)).status).toBe(200);
        await k.processAll();
      }
      const registered = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/messages",
        headers: bearer(a.key),
        payload: { channel: "sms", provider: "twilio", to: "+14155550123", provider_message_id: sid },
      });
      expect(registered.status).toBe(201);
      expect((await message(a.key, registered.body.id)).status).toBe("delivered");
    });
  });
}
