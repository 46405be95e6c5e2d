import { describe, expect, it } from "vitest";
import { backends } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";
import { sampleBatch } from "./support/sendgrid.js";

/**
 * Registering outbound messages over the API: addresses, idempotency, batches, status.
 */
for (const backend of backends()) {
  describe(`registering outbound messages on ${backend}`, () => {
    const k = ingestHarness(backend);
    const { tenantWithSource, post, processAll, register, registerBatch, suppress } = k;

    it("stores phone numbers as E.164 and emails bare, and refuses what cannot be either", async () => {
      const a = await tenantWithSource("addresses");
      const sms = await register(a.key, { channel: "sms", provider: "twilio", to: "+1 (415) 555-0100" });
      expect(sms.status).toBe(201);
      expect(sms.body.to).toBe("+14155550100");
      const national = await register(a.key, { channel: "sms", provider: "twilio", to: "(415) 555-0100" });
      expectProblem(national, 400, "validation_failed");
      expect(national.body.errors).toEqual([
        { path: "/body/to", message: "is not an E.164 phone number (such as +14155550100)" },
      ]);
      const batch = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/messages/batch",
        headers: bearer(a.key),
        payload: {
          messages: [
            { channel: "email", provider: "sendgrid", to: "ada@example.com" },
            { channel: "email", provider: "sendgrid", to: "Ada <ada@example.com>" },
          ],
        },
      });
      expectProblem(batch, 400, "validation_failed");
      expect(batch.body.errors.map((e: { path: string }) => e.path)).toEqual(["/body/messages/1/to"]);
      expect(await count(k.t.database.db, "outbound_messages", `tenant_id = '${a.tenantId}'`)).toBe(1);
      const manual = await suppress(a.key, { channel: "sms", address: "+44 20 7946 0958", reason: "manual" });
      expect(manual.status).toBe(201);
      expect(manual.body.address).toBe("+442079460958");
      const check = (address: string) =>
        call(k.h.app, {
          method: "GET",
          url: `/api/v1/suppressions/check?channel=sms&address=${encodeURIComponent(address)}`,
          headers: bearer(a.key),
        });
      expect((await check("+44 (20) 7946-0958")).body.suppressed).toBe(true);
      expectProblem(await check("020 7946 0958"), 400, "validation_failed");
    });

    it("reaches the same final status whatever the order, and a late deferred changes nothing", async () => {
      const finals: string[] = [];
      for (const order of [
        [0, 1, 2, 3],
        [3, 2, 1, 0],
        [2, 0, 3, 1],
      ]) {
        const a = await tenantWithSource(`order-${order.join("")}`);
        const m = await register(a.key, {
          channel: "email",
          provider: "sendgrid",
          to: "ada@example.com",
          provider_message_id: "Xq1pA7nTQ8uR2cWm4vYbZg",
        });
        const ada = sampleBatch().slice(0, 4);
        for (const i of order) {
          await post(a.url, JSON.stringify([ada[i]]));
          await processAll();
        }
        const late = {
          email: "ada@example.com",
          event: "deferred",
          timestamp: 1763800500,
          sg_event_id: "late-deferred",
          sg_message_id: ada[0]!.sg_message_id,
        };
        await post(a.url, JSON.stringify([late]));
        await processAll();
        finals.push(
          (
            await call(k.h.app, {
              method: "GET",
              url: `/api/v1/messages/${m.body.id}`,
              headers: bearer(a.key),
            })
          ).body.status,
        );
      }
      expect(finals).toEqual(["clicked", "clicked", "clicked"]);
    });

    it("keeps one message per dedupe key, within a batch and against stored ones; the single route answers 200 for a repeat", async () => {
      const a = await tenantWithSource("dedupe");
      const message = (key: string | undefined, to: string) => ({
        channel: "email",
        provider: "sendgrid",
        to,
        ...(key ? { dedupe_key: key } : {}),
      });
      const first = await register(a.key, message("k1", "ada@example.com"));
      expect(first.status).toBe(201);
      const again = await register(a.key, message("k1", "other@example.com"));
      expect(again.status).toBe(200);
      expect(again.body).toEqual(first.body);
      const batch = await registerBatch(a.key, [
        message("k2", "bob@example.com"),
        message("k1", "ada@example.com"),
        message("k2", "carol@example.com"),
        message(undefined, "dan@example.com"),
        message(undefined, "dan@example.com"),
      ]);
      expect(batch.status).toBe(201);
      const [k2, k1, k2again, dan1, dan2] = batch.body.messages as { id: string; to: string }[];
      expect(k1).toEqual(first.body);
      // The first of a key repeated within the batch is the one stored, and both places answer it.
      expect(k2again).toEqual(k2);
      expect(k2!.to).toBe("bob@example.com");
      expect(dan1!.id).not.toBe(dan2!.id);
      expect(await count(k.t.database.db, "outbound_messages", `tenant_id = '${a.tenantId}'`)).toBe(4);
      // In input order, the stored ones as they are.
      expect((await register(a.key, message("k2", "x@example.com"))).body.id).toBe(k2!.id);
    });

    it("refuses a batch naming another tenant's campaign, and stores none of it", async () => {
      const a = await tenantWithSource("campaign-check");
      const batch = await registerBatch(a.key, [
        { channel: "email", provider: "sendgrid", to: "ada@example.com" },
        {
          channel: "email",
          provider: "sendgrid",
          to: "bob@example.com",
          campaign_id: "01a20000-0000-7000-8000-000000000000",
        },
      ]);
      expectProblem(batch, 400, "validation_failed");
      expect(await count(k.t.database.db, "outbound_messages", `tenant_id = '${a.tenantId}'`)).toBe(0);
    });
  });
}
