import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { type Database, openDatabase, query } from "../src/db/client.js";
import { firstUse } from "../src/ingest/replayTokens.js";
import { reprocess } from "../src/ingest/reprocess.js";
import { timestampToleranceMs } from "../src/providers/mailgun.js";
import { backends } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call } from "./support/http.js";
import { adminToken, ingestHarness } from "./support/ingestHarness.js";
import { mailgunEvent, mailgunSigningKey, signedBody } from "./support/mailgun.js";

const messageId = "20261205093000.1.A1B2C3D4E5F60718@mg.example.com";

/**
 * Mailgun's webhooks through the real route and the processor, on both backends: each signed request taken
 * once (its token recorded in the database, so a replay is refused after a restart and by every instance),
 * Mailgun's retries (the same event, newly signed) stored once, linked, moving the status only forward, and
 * suppressing the address on a hard bounce, a complaint or an unsubscribe.
 */
for (const backend of backends()) {
  describe(`Mailgun webhooks on ${backend}`, () => {
    const k = ingestHarness(backend);

    async function tenantWithMailgun(name: string) {
      const { key, tenantId } = await k.tenantWithSource(name, false);
      const source = await call(k.h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "mailgun", verification: { signing_key: mailgunSigningKey } },
      });
      expect(source.status).toBe(201);
      const url = source.body.url as string;
      return { key, tenantId, url, sourceId: url.split("/").pop()! };
    }

    const post = (url: string, body: string, app = k.h.app) =>
      call(app, { method: "POST", url, payload: body, headers: { "content-type": "application/json" } });

    /** A fixture's event, recent (its time is now, less `agoSeconds`), to `recipient` if given. */
    const event = (fixture: string, changes: Record<string, unknown> = {}, agoSeconds = 60) => ({
      ...mailgunEvent(fixture),
      timestamp: Date.now() / 1000 - agoSeconds,
      ...changes,
    });

    const deliveries = (tenantId: string) =>
      count(k.t.database.db, "webhook_deliveries", `tenant_id = '${tenantId}'`);
    const tokens = (sourceId: string) =>
      count(k.t.database.db, "webhook_replay_tokens", `source_id = '${sourceId}'`);

    /** Another Herald on the same database: a restart (the same pool) or another process (its own pool). */
    async function otherInstance(ownPool: boolean): Promise<{ h: HeraldApp; close(): Promise<void> }> {
      const database: Database = ownPool && k.t.url ? await openDatabase({ url: k.t.url }) : k.t.database;
      const h = await buildApp({ database, config: { adminToken, bodyLimitBytes: 5 * 1024 * 1024 } });
      return {
        h,
        async close() {
          await h.app.close();
          if (database !== k.t.database) await database.close();
        },
      };
    }

    it("takes a signed request once: its replay is refused after a restart and by another instance", async () => {
      const a = await tenantWithMailgun("mailgun-replay");
      const first = signedBody(event("delivered"));
      const accepted = await post(a.url, first.body);
      expect(accepted.status).toBe(200);
      expect(accepted.body).toMatchObject({ events: 1 });
      const replayed = await post(a.url, first.body);
      expect(replayed.status).toBe(401);
      expect(replayed.body.code).toBe("invalid_signature");
      expect(replayed.body.detail).toMatch(/used before/);

      // The app rebuilt on the same database: the record outlives the process.
      const restarted = await otherInstance(false);
      expect((await post(a.url, first.body, restarted.h.app)).status).toBe(401);
      await restarted.close();

      // A second instance with its own connections (on PGlite, in-process: the same database file).
      const second = await otherInstance(true);
      expect((await post(a.url, first.body, second.h.app)).status).toBe(401);
      // …and what it takes, the first refuses again.
      const other = signedBody(event("opened"));
      expect((await post(a.url, other.body, second.h.app)).status).toBe(200);
      await second.close();
      expect((await post(a.url, other.body)).status).toBe(401);

      expect(await deliveries(a.tenantId)).toBe(2);
      expect(await tokens(a.sourceId)).toBe(2);
    });

    it("lets exactly one of concurrent copies of a signed request through, across instances", async () => {
      const a = await tenantWithMailgun("mailgun-race");
      const second = await otherInstance(true);
      try {
        const { body } = signedBody(event("clicked"));
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, i) => post(a.url, body, i % 2 === 0 ? k.h.app : second.h.app)),
        );
        expect(answers.map((r) => r.status).sort()).toEqual([200, 401, 401, 401, 401, 401, 401, 401]);
      } finally {
        await second.close();
      }
      expect(await deliveries(a.tenantId)).toBe(1);
      expect(await tokens(a.sourceId)).toBe(1);
    });

    it("refuses forged, stale and future requests, storing nothing and recording no token", async () => {
      const a = await tenantWithMailgun("mailgun-forged");
      const now = Math.floor(Date.now() / 1000);
      const limit = timestampToleranceMs / 1000;
      const bodies = [
        signedBody(event("delivered"), { key: "key-someone-else" }).body,
        signedBody(event("delivered"), { signature: "f".repeat(64) }).body,
        signedBody(event("delivered"), { timestamp: now - limit - 60 }).body,
        signedBody(event("delivered"), { timestamp: now + limit + 60 }).body,
        JSON.stringify({ "event-data": event("delivered") }),
        "not json",
      ];
      for (const body of bodies) {
        const answer = await post(a.url, body);
        expect(answer.status, body).toBe(401);
        expect(answer.body.code).toBe("invalid_signature");
      }
      expect(await deliveries(a.tenantId)).toBe(0);
      expect(await tokens(a.sourceId)).toBe(0);
    });

    it("stores an event Mailgun retries once, links it, and moves the status only forward", async () => {
      const a = await tenantWithMailgun("mailgun-linking");
      const registered = await k.register(a.key, {
        channel: "email",
        provider: "mailgun",
        to: "Alice@Example.com",
        // As Mailgun's send API answers it; its events carry it bare.
        provider_message_id: `<${messageId}>`,
      });
      expect(registered.status).toBe(201);
      expect(registered.body.provider_message_id).toBe(messageId);
      // Mailgun's retries: the same event, each time newly signed (another token), here all at once.
      const delivered = event("delivered", {}, 300);
      const answers = await Promise.all([1, 2, 3].map(() => post(a.url, signedBody(delivered).body)));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      expect((await post(a.url, signedBody(event("opened", {}, 200)).body)).status).toBe(200);
      await k.processAll();
      // A temporary failure arriving late changes nothing: opened ranks above deferred.
      expect((await post(a.url, signedBody(event("failed-temporary", {}, 400)).body)).status).toBe(200);
      await k.processAll();

      const message = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${registered.body.id}`,
        headers: bearer(a.key),
      });
      expect(message.body.status).toBe("opened");
      const events = await call(k.h.app, {
        method: "GET",
        url: `/api/v1/messages/${registered.body.id}/events`,
        headers: bearer(a.key),
      });
      expect(events.body.events.map((e: { type: string }) => e.type).sort()).toEqual([
        "deferred",
        "delivered",
        "open",
      ]);
      // One view across providers: the canonical type, and Mailgun's own beside it.
      expect(
        events.body.events
          .map((e: { type: string; provider_type: string }) => [e.type, e.provider_type])
          .sort(),
      ).toEqual([
        ["deferred", "failed"],
        ["delivered", "delivered"],
        ["open", "opened"],
      ]);
      const deferred = events.body.events.find((e: { type: string }) => e.type === "deferred");
      expect(deferred.reason).toBe("452 4.2.2 The email account that you tried to reach is over quota.");
      expect(deferred.provider_message_id).toBe(messageId);
      expect(await deliveries(a.tenantId)).toBe(5);
      expect(await count(k.t.database.db, "message_events", `tenant_id = '${a.tenantId}'`)).toBe(3);
      expect(
        await count(
          k.t.database.db,
          "message_events",
          `tenant_id = '${a.tenantId}' and outbound_message_id = '${registered.body.id}'`,
        ),
      ).toBe(3);
    });

    it("suppresses the address of a hard bounce, a complaint and an unsubscribe, and no other", async () => {
      const a = await tenantWithMailgun("mailgun-suppressions");
      const sent: [string, string][] = [
        ["failed-permanent", "bounced@example.com"],
        ["complained", "complained@example.com"],
        ["unsubscribed", "unsubscribed@example.com"],
        ["failed-temporary", "deferred@example.com"],
        ["failed-suppress-bounce", "known@example.com"],
        ["failed-espblock", "blocked@example.com"],
        ["rejected", "rejected@example.com"],
      ];
      for (const [fixture, recipient] of sent)
        expect((await post(a.url, signedBody(event(fixture, { recipient })).body)).status, fixture).toBe(200);
      await k.processAll();
      const rows = await query<{ address: string; reason: string }>(
        k.t.database.db,
        sql`select address, reason from communication_suppressions
          where tenant_id = ${a.tenantId} order by address`,
      );
      expect(rows).toEqual([
        { address: "bounced@example.com", reason: "bounce" },
        { address: "complained@example.com", reason: "spamreport" },
        { address: "unsubscribed@example.com", reason: "unsubscribe" },
      ]);
    });

    it("is reprocessed from the archive: what is missing is stored, unknown events kept, then nothing more", async () => {
      const a = await tenantWithMailgun("mailgun-reprocess");
      const fixtures = ["accepted", "delivered", "clicked", "stored"];
      for (const fixture of fixtures)
        expect((await post(a.url, signedBody(event(fixture)).body)).status, fixture).toBe(200);
      const db = k.t.database.db;
      // Not processed yet: the archived bodies alone (their signatures are not checked again).
      expect(await reprocess(db, { sourceId: a.sourceId })).toEqual({ deliveries: 4, stored: 4, failed: [] });
      expect(await reprocess(db, { sourceId: a.sourceId })).toEqual({ deliveries: 4, stored: 0, failed: [] });
      await k.processAll();
      const stored = await query<{ type: string; payload: Record<string, unknown> }>(
        db,
        sql`select type, payload from message_events where tenant_id = ${a.tenantId} order by type`,
      );
      expect(stored.map((e) => e.type)).toEqual(["click", "delivered", "processed", "unknown"]);
      expect(stored[3]!.payload).toMatchObject({ event: "stored", id: "Q0Jt3aT1Y8gR0dXh5sBnEe" });
      expect(await count(db, "message_events", `tenant_id = '${a.tenantId}'`)).toBe(4);
    });

    it("records tokens until they expire: an expired one is usable again, and expired ones are swept", async () => {
      const a = await tenantWithMailgun("mailgun-tokens");
      const db = k.t.database.db;
      const source = { id: a.sourceId, tenantId: a.tenantId };
      const past = new Date(Date.now() - 60_000);
      const future = new Date(Date.now() + 60_000);
      expect(await firstUse(db, source, "live", future)).toBe(true);
      expect(await firstUse(db, source, "live", future)).toBe(false);
      // Expired: taken again, and recorded anew.
      expect(await firstUse(db, source, "old", past)).toBe(true);
      expect(await firstUse(db, source, "old", future)).toBe(true);
      expect(await firstUse(db, source, "old", future)).toBe(false);
      // Another source's token of the same text is its own.
      const b = await tenantWithMailgun("mailgun-tokens-other");
      expect(await firstUse(db, { id: b.sourceId, tenantId: b.tenantId }, "live", future)).toBe(true);

      await query(
        db,
        sql`insert into webhook_replay_tokens (source_id, token, tenant_id, expires_at)
          select ${a.sourceId}::uuid, 'expired-' || n, ${a.tenantId}::uuid, now() - interval '1 minute'
          from generate_series(1, 15) as n`,
      );
      const expired = () =>
        count(db, "webhook_replay_tokens", `source_id = '${a.sourceId}' and expires_at < now()`);
      expect(await expired()).toBe(15);
      // Each use sweeps some of its source's expired tokens (ten at most), never a live one.
      expect(await firstUse(db, source, "sweeper-1", future)).toBe(true);
      expect(await expired()).toBe(5);
      expect(await firstUse(db, source, "sweeper-2", future)).toBe(true);
      expect(await expired()).toBe(0);
      expect(await firstUse(db, source, "live", future)).toBe(false);
      expect(await count(db, "webhook_replay_tokens", `source_id = '${b.sourceId}'`)).toBe(1);
    });
  });
}
