import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { query } from "../src/db/client.js";
import { backends } from "./support/databases.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { ingestHarness } from "./support/ingestHarness.js";

/**
 * GET /api/v1/messages filtered by recipient (`to`, compared as stored), `channel` and `campaign_id`, beside
 * `status` and `contact_id`, keyset-paged newest first.
 */
for (const backend of backends()) {
  describe(`listing outbound messages on ${backend}`, () => {
    const k = ingestHarness(backend);
    const { tenantWithSource, register } = k;

    it("filters by recipient, channel and campaign, pages by the cursor, and keeps tenants apart", async () => {
      const a = await tenantWithSource("list-a");
      const b = await tenantWithSource("list-b");
      const [campaign] = await query<{ id: string }>(
        k.t.database.db,
        sql`insert into contact_campaigns (tenant_id, contact_id, channel) values (${a.tenantId}, 'c-ada', 'email') returning id`,
      );
      const ids: Record<string, string[]> = {};
      const add = async (key: string, name: string, body: Record<string, unknown>) => {
        const created = await register(key, { provider: "sendgrid", ...body });
        expect(created.status).toBe(201);
        ids[name] = [...(ids[name] ?? []), created.body.id as string];
      };
      for (let i = 0; i < 3; i++)
        await add(a.key, "ada", {
          channel: "email",
          to: "ada@example.com",
          ...(i < 2 ? { campaign_id: campaign!.id } : {}),
        });
      await add(a.key, "bob", { channel: "email", to: "bob@example.com" });
      await add(a.key, "phone", { channel: "sms", provider: "twilio", to: "+14155550100" });
      await add(b.key, "ada-b", { channel: "email", to: "ada@example.com" });

      const list = async (key: string, q: string) => {
        const response = await call(k.h.app, {
          method: "GET",
          url: `/api/v1/messages?${q}`,
          headers: bearer(key),
        });
        expect(response.status, q).toBe(200);
        return response.body as { messages: { id: string; to: string }[]; next_cursor: string | null };
      };
      const newestFirst = (name: string) => [...ids[name]!].reverse();

      // The recipient as written by a person: an email in any case, a phone number formatted.
      expect((await list(a.key, "to=Ada%40Example.com")).messages.map((m) => m.id)).toEqual(
        newestFirst("ada"),
      );
      expect((await list(a.key, "to=%2B1%20(415)%20555-0100")).messages.map((m) => m.id)).toEqual(ids.phone);
      expect((await list(a.key, "to=ada%40example.com&channel=sms")).messages).toEqual([]);
      expect((await list(a.key, "channel=sms")).messages.map((m) => m.id)).toEqual(ids.phone);
      expect((await list(a.key, `campaign_id=${campaign!.id}`)).messages.map((m) => m.id)).toEqual(
        newestFirst("ada").slice(1),
      );
      expect((await list(a.key, "to=ada%40example.com&status=bounced")).messages).toEqual([]);
      expect((await list(b.key, "to=ada%40example.com")).messages.map((m) => m.id)).toEqual(ids["ada-b"]);

      // Keyset paging within the recipient's messages.
      const first = await list(a.key, "to=ada%40example.com&limit=2");
      expect(first.messages.map((m) => m.id)).toEqual(newestFirst("ada").slice(0, 2));
      expect(first.next_cursor).not.toBeNull();
      const second = await list(a.key, `to=ada%40example.com&limit=2&cursor=${first.next_cursor}`);
      expect(second.messages.map((m) => m.id)).toEqual(newestFirst("ada").slice(2));
      expect(second.next_cursor).toBeNull();

      const refused = await call(k.h.app, {
        method: "GET",
        url: "/api/v1/messages?campaign_id=not-a-uuid",
        headers: bearer(a.key),
      });
      expectProblem(refused, 400, "validation_failed");
    });
  });
}
