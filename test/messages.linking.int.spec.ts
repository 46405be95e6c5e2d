import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { backends } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";
import { sampleBatch } from "./support/sendgrid.js";

/**
 * Linking provider events to outbound messages (API.md, "Linking"): by recipient where a send has many,
 * and events that arrive before their message, linked when it is registered.
 */
for (const backend of backends()) {
  describe(`linking provider events to messages on ${backend}`, () => {
    const k = ingestHarness(backend);
    const { tenantWithSource, post, processAll, linkedEvents, register, registerBatch } = k;

    it("links an event of a send to many recipients to its recipient's message only", async () => {
      const a = await tenantWithSource("many-recipients");
      const shared = { channel: "email", provider: "sendgrid", provider_message_id: "MANY1xyz" };
      const ada = await register(a.key, { ...shared, to: "ada@example.com" });
      const bob = await register(a.key, { ...shared, to: "bob@example.com" });
      const event = (email: string, id: string) => ({
        email,
        event: "bounce",
        type: "bounce",
        timestamp: 1763800000,
        sg_event_id: id,
        sg_message_id: "MANY1xyz.filter0001-1",
      });
      const body = JSON.stringify([
        event("ada@example.com", "many-a"),
        event("Bob@Example.com", "many-b"),
        event("carol@example.com", "many-c"),
      ]);
      expect((await post(a.url, body)).status).toBe(200);
      await processAll();
      const linked = await linkedEvents(a.tenantId);
      expect(linked).toEqual([
        { provider_event_id: "many-a", outbound_message_id: ada.body.id },
        { provider_event_id: "many-b", outbound_message_id: bob.body.id },
        // Carol's message is not registered: her bounce must not bounce Ada's or Bob's.
        { provider_event_id: "many-c", outbound_message_id: null },
      ]);
      expect(
        (
          await call(k.h.app, {
            method: "GET",
            url: `/api/v1/messages/${ada.body.id}`,
            headers: bearer(a.key),
          })
        ).body.status,
      ).toBe("bounced");
    });

    it("gives the messages of one send, registered together, each their own recipient's waiting events", async () => {
      const a = await tenantWithSource("one-send");
      const shared = { channel: "email", provider: "sendgrid", provider_message_id: "ONESEND1" };
      const event = (email: string, type: string, id: string) => ({
        email,
        event: type,
        ...(type === "bounce" ? { type: "bounce" } : {}),
        timestamp: 1763800000,
        sg_event_id: id,
        sg_message_id: "ONESEND1.filter0001-1",
      });
      // Both recipients' events arrive before their messages are registered.
      await post(
        a.url,
        JSON.stringify([
          event("ada@example.com", "delivered", "one-a"),
          event("bob@example.com", "bounce", "one-b"),
        ]),
      );
      await processAll();
      const batch = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/messages/batch",
        headers: bearer(a.key),
        payload: {
          messages: [
            { ...shared, to: "ada@example.com" },
            { ...shared, to: "bob@example.com" },
          ],
        },
      });
      expect(batch.status).toBe(201);
      const [ada, bob] = batch.body.messages as { id: string; status: string }[];
      // Ada's message, first in the batch, does not take Bob's bounce: both were stored before either linked.
      expect([ada!.status, bob!.status]).toEqual(["delivered", "bounced"]);
      // A later event goes to its recipient's message too.
      await post(a.url, JSON.stringify([event("bob@example.com", "spamreport", "one-b2")]));
      await processAll();
      const linked = await linkedEvents(a.tenantId);
      expect(linked).toEqual([
        { provider_event_id: "one-a", outbound_message_id: ada!.id },
        { provider_event_id: "one-b", outbound_message_id: bob!.id },
        { provider_event_id: "one-b2", outbound_message_id: bob!.id },
      ]);
    });

    it("keeps events that arrive before their message and links them when it is registered", async () => {
      const a = await tenantWithSource("orphans");
      await post(a.url, JSON.stringify(sampleBatch().slice(4, 7)));
      await processAll();
      expect(
        await count(
          k.t.database.db,
          "message_events",
          `tenant_id = '${a.tenantId}' and outbound_message_id is null`,
        ),
      ).toBe(3);
      const bob = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "bob@example.org",
        provider_message_id: "Lm3kB8pQR1sT5uVw7xYzAa",
      });
      expect(bob.status).toBe(201);
      expect(bob.body.status).toBe("bounced");
      const events = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${bob.body.id}/events`,
        headers: bearer(a.key),
      });
      expect(events.body.events).toHaveLength(3);
      // Their message.* events in the log, appended before the message existed, now name it too.
      expect(
        await count(
          k.t.database.db,
          "events",
          `message_id = '${bob.body.id}' and event_type like 'message.%'`,
        ),
      ).toBe(3);
      // A campaign of another tenant, or none at all, is refused (not a 500, not a cross-tenant link).
      const b = await tenantWithSource("orphans-b");
      const [theirs] = await query<{ id: string }>(
        k.t.database.db,
        sql`insert into contact_campaigns (tenant_id, contact_id, channel) values (${b.tenantId}, 'c', 'email') returning id`,
      );
      for (const campaign of [theirs!.id, "01a20000-0000-7000-8000-00000000dead"]) {
        expectProblem(
          await register(a.key, {
            channel: "email",
            provider: "sendgrid",
            to: "z@y.z",
            campaign_id: campaign,
          }),
          400,
          "validation_failed",
        );
      }
      // Registering again with the same dedupe key returns the same message.
      const again = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "x@y.z",
        dedupe_key: "k",
      });
      const repeat = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "x@y.z",
        dedupe_key: "k",
      });
      expect(repeat.status).toBe(200);
      expect(repeat.body.id).toBe(again.body.id);
    });

    it("links the waiting events of many messages registered in one batch, each by the longest id that links it", async () => {
      const a = await tenantWithSource("batch-orphans");
      const event = (email: string, type: string, id: string, messageId: string) => ({
        email,
        event: type,
        timestamp: 1763800000,
        sg_event_id: id,
        sg_message_id: messageId,
      });
      const before = await register(a.key, {
        channel: "email",
        provider: "sendgrid",
        to: "old@example.com",
        provider_message_id: "OLD1",
        dedupe_key: "old",
      });
      await post(
        a.url,
        JSON.stringify([
          event("ada@example.com", "delivered", "bo-a", "BATCHA.filter-1"),
          event("bob@example.com", "open", "bo-b", "BATCHB.filter-1"),
          event("bob@example.com", "delivered", "bo-b0", "BATCHB.filter-0"),
          event("carol@example.com", "delivered", "bo-c", "LEG.dfd.64b469.filter0001.1"),
          event("dan@example.com", "delivered", "bo-d", "NOBODY.filter-1"),
          event("old@example.com", "open", "bo-o", "OLD1.filter-9"),
        ]),
      );
      await processAll();
      // bo-o arrived after OLD1 was registered: linked at once.
      const batch = await registerBatch(a.key, [
        { channel: "email", provider: "sendgrid", to: "ada@example.com", provider_message_id: "BATCHA" },
        { channel: "email", provider: "sendgrid", to: "bob@example.com", provider_message_id: "BATCHB" },
        // A legacy id with dots of its own, and a shorter one that also prefixes it: the longer wins.
        { channel: "email", provider: "sendgrid", to: "carol@example.com", provider_message_id: "LEG" },
        {
          channel: "email",
          provider: "sendgrid",
          to: "carol@example.com",
          provider_message_id: "LEG.dfd.64b469",
        },
        // Mixed in: one already stored (its dedupe key), returned as it stands.
        {
          channel: "email",
          provider: "sendgrid",
          to: "old@example.com",
          provider_message_id: "OLD1",
          dedupe_key: "old",
        },
      ]);
      expect(batch.status).toBe(201);
      const [ada, bob, leg, legacy, old] = batch.body.messages as { id: string; status: string }[];
      expect(batch.body.messages.map((m: { status: string }) => m.status)).toEqual([
        "delivered",
        "opened",
        "sent",
        "delivered",
        "opened",
      ]);
      expect(old!.id).toBe(before.body.id);
      expect(await linkedEvents(a.tenantId)).toEqual([
        { provider_event_id: "bo-a", outbound_message_id: ada!.id },
        { provider_event_id: "bo-b", outbound_message_id: bob!.id },
        { provider_event_id: "bo-b0", outbound_message_id: bob!.id },
        { provider_event_id: "bo-c", outbound_message_id: legacy!.id },
        { provider_event_id: "bo-d", outbound_message_id: null },
        { provider_event_id: "bo-o", outbound_message_id: old!.id },
      ]);
      expect(leg!.id).not.toBe(legacy!.id);
      // Their message.* events in the log name the message too.
      const logged = await query<{ event_type: string; message_id: string | null }>(
        k.t.database.db,
        sql`select event_type, message_id from events where tenant_id = ${a.tenantId} and event_type like 'message.%'
          order by event_type, message_id`,
      );
      expect(logged.filter((e) => e.message_id === null)).toHaveLength(1); // bo-d's
      expect(logged.filter((e) => e.message_id === bob!.id).map((e) => e.event_type)).toEqual([
        "message.delivered",
        "message.open",
      ]);
    });
  });
}
