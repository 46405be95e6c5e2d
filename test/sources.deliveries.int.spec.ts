import { describe, expect, it } from "vitest";
import { buildApp } from "../src/api/app.js";
import { backends, createTestDatabase } from "./support/databases.js";
import { bearer, call, expectProblem, newTenantKey } from "./support/http.js";
import { adminToken, ingestHarness } from "./support/ingestHarness.js";
import { sampleBatch } from "./support/sendgrid.js";

/**
 * `GET /api/v1/sources/{id}/deliveries`: a source's archived deliveries newest first, the rejected ones with
 * their reason, paged by a cursor; and `last_received_at` and the full `webhook_url` on the source. Another
 * tenant sees none of it.
 */
for (const backend of backends()) {
  describe(`source deliveries on ${backend}`, () => {
    const k = ingestHarness(backend);

    const get = (key: string, url: string) => call(k.h.app, { method: "GET", url, headers: bearer(key) });
    const idOf = (url: string) => url.split("/").at(-1)!;

    it("lists accepted and rejected deliveries newest first, filters the rejected, and pages", async () => {
      const a = await k.tenantWithSource("deliveries-a");
      const id = idOf(a.url);
      const fresh = (await get(a.key, `/api/v1/sources/${id}`)).body;
      expect(fresh.last_received_at).toBeNull();
      // The full URL to give the provider: this request's scheme and host (no HERALD_PUBLIC_URL here).
      expect(fresh.webhook_url).toBe(`http://localhost:80${a.url}`);
      expect((await get(a.key, `/api/v1/sources/${id}/deliveries`)).body).toEqual({
        deliveries: [],
        next_cursor: null,
      });

      const accepted: number[] = [];
      for (let i = 0; i < 3; i++) {
        const answer = await k.post(a.url, JSON.stringify(sampleBatch()));
        expect(answer.status).toBe(200);
        accepted.push(answer.body.delivery_id);
      }
      // Verified, then refused: an object where SendGrid sends an array. Archived as rejected, answered 400.
      const refused = await k.post(a.url, JSON.stringify({ event: "delivered" }));
      expect(refused.status).toBe(400);
      // A bad signature is answered 401 and nothing is stored.
      const unsigned = await k.post(a.url, JSON.stringify(sampleBatch()), {
        "x-twilio-email-event-webhook-signature": "bm9wZQ==",
        "x-twilio-email-event-webhook-timestamp": String(Math.floor(Date.now() / 1000)),
      });
      expect(unsigned.status).toBe(401);

      const all = await get(a.key, `/api/v1/sources/${id}/deliveries`);
      expect(all.status).toBe(200);
      expect(all.body.deliveries).toHaveLength(4);
      const [rejected, ...rest] = all.body.deliveries;
      expect(rejected).toMatchObject({ status: "rejected", event_count: 0 });
      expect(rejected.rejected_reason).toMatch(/array/i);
      expect(rest.map((d: { id: string }) => Number(d.id))).toEqual([...accepted].reverse());
      for (const d of rest) {
        expect(d.rejected_reason).toBeNull();
        expect(d.event_count).toBe(sampleBatch().length);
        expect(d.received_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      }

      const source = await get(a.key, `/api/v1/sources/${id}`);
      expect(source.body.last_received_at).toBe(rejected.received_at);
      const listed = await get(a.key, "/api/v1/sources");
      expect(listed.body.sources[0].last_received_at).toBe(rejected.received_at);

      const onlyRejected = await get(a.key, `/api/v1/sources/${id}/deliveries?rejected=true`);
      expect(onlyRejected.body.deliveries.map((d: { id: string }) => d.id)).toEqual([rejected.id]);
      const onlyAccepted = await get(a.key, `/api/v1/sources/${id}/deliveries?rejected=false`);
      expect(onlyAccepted.body.deliveries).toHaveLength(3);

      // Page by page, every delivery once, in the same order.
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await get(
          a.key,
          `/api/v1/sources/${id}/deliveries?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        );
        expect(page.status).toBe(200);
        expect(page.body.deliveries.length).toBeLessThanOrEqual(1);
        paged.push(...page.body.deliveries.map((d: { id: string }) => d.id));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(paged).toEqual(all.body.deliveries.map((d: { id: string }) => d.id));

      // A cursor belongs to its list: another filter refuses it.
      const first = await get(a.key, `/api/v1/sources/${id}/deliveries?limit=1`);
      const misused = await get(
        a.key,
        `/api/v1/sources/${id}/deliveries?limit=1&rejected=false&cursor=${encodeURIComponent(first.body.next_cursor)}`,
      );
      expectProblem(misused, 400, "validation_failed");
    });

    it("answers 404 for another tenant's source and for an unknown one", async () => {
      const a = await k.tenantWithSource("deliveries-owner");
      const b = await k.tenantWithSource("deliveries-other");
      expect((await k.post(a.url, JSON.stringify([{ no: "fields" }]))).status).toBeLessThan(500);
      const id = idOf(a.url);
      expectProblem(await get(b.key, `/api/v1/sources/${id}/deliveries`), 404, "not_found");
      expectProblem(
        await get(a.key, "/api/v1/sources/00000000-0000-7000-8000-000000000000/deliveries"),
        404,
        "not_found",
      );
      // b's own source lists only its own deliveries (none).
      expect((await get(b.key, `/api/v1/sources/${idOf(b.url)}/deliveries`)).body.deliveries).toEqual([]);
      expect((await get(b.key, `/api/v1/sources/${idOf(b.url)}`)).body.last_received_at).toBeNull();
      expectProblem(
        await get(a.key, `/api/v1/sources/${id}/deliveries?rejected=maybe`),
        400,
        "validation_failed",
      );
    });
  });
}

describe("a source's webhook URL with HERALD_PUBLIC_URL", () => {
  it("is Herald's public URL followed by the source's path", async () => {
    const t = await createTestDatabase("pglite");
    const { app } = await buildApp({
      database: t.database,
      config: { adminToken, bodyLimitBytes: 1024 * 1024, publicUrl: "https://herald.example.com/hooks" },
    });
    try {
      const key = await newTenantKey(app, adminToken, "public-url");
      const created = await call(app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(key),
        payload: { provider: "sendgrid" },
      });
      expect(created.body.webhook_url).toBe(`https://herald.example.com/hooks${created.body.url}`);
      const read = await call(app, {
        method: "GET",
        url: created.body.url.replace(/^.*\//, "/api/v1/sources/"),
        headers: bearer(key),
      });
      expect(read.body.webhook_url).toBe(created.body.webhook_url);
    } finally {
      await app.close();
      await t.drop();
    }
  });
});
