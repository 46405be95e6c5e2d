import { generateKeyPairSync } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { query } from "../src/db/client.js";
import { revokeApiKey } from "../src/tenancy/apiKeys.js";
import { backends, createTestDatabase, type TestDatabase } from "./support/databases.js";
import { bearer, call, expectProblem } from "./support/http.js";
import { sendgridKeys } from "./support/sendgrid.js";

const adminToken = "test-admin-token-0123456789";

/** Tenants, keys, sources and the error contract over HTTP: the same on PGlite and PostgreSQL. */
for (const backend of backends()) {
  describe(`HTTP API on ${backend}`, () => {
    let t: TestDatabase;
    let h: HeraldApp;
    let keyA: string;
    let keyB: string;
    let tenantA: string;

    beforeAll(async () => {
      t = await createTestDatabase(backend);
      h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 4096 } });
      const a = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "acme" },
      });
      expect(a.status).toBe(201);
      expect(a.body.api_key).toMatch(/^hk_[A-Za-z0-9_-]{43}$/);
      keyA = a.body.api_key;
      tenantA = a.body.tenant.id;
      const b = await call(h.app, {
        method: "POST",
        url: "/api/v1/admin/tenants",
        headers: bearer(adminToken),
        payload: { name: "globex" },
      });
      keyB = b.body.api_key;
    });
    afterAll(async () => {
      await h?.app.close();
      await t?.drop();
    });

    it("answers 401 without a key, with a malformed key and with an unknown key", async () => {
      expectProblem(await call(h.app, { method: "GET", url: "/api/v1/sources" }), 401, "unauthorized");
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer("nope") }),
        401,
        "unauthorized",
      );
      const forged = `hk_${"A".repeat(43)}`;
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer(forged) }),
        401,
        "unauthorized",
      );
      // A real key's prefix with the wrong rest is refused too.
      const tampered = `${keyA.slice(0, 20)}${keyA.at(20) === "x" ? "y" : "x"}${keyA.slice(21)}`;
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer(tampered) }),
        401,
        "unauthorized",
      );
    });

    it("revokes a key at once", async () => {
      const issued = await call(h.app, {
        method: "POST",
        url: `/api/v1/admin/tenants/${tenantA}/api-keys`,
        headers: bearer(adminToken),
      });
      expect(issued.status).toBe(201);
      const key = issued.body.api_key as string;
      expect(
        (await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer(key) })).status,
      ).toBe(200);
      const revoked = await call(h.app, {
        method: "DELETE",
        url: `/api/v1/admin/api-keys/${issued.body.id}`,
        headers: bearer(adminToken),
      });
      expect(revoked.status).toBe(204);
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer(key) }),
        401,
        "unauthorized",
      );
      expect(
        (await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer(keyA) })).status,
      ).toBe(200);
    });

    it("answers 401 to a key this process remembers once another process revoked it, rolling its write back", async () => {
      const issued = await call(h.app, {
        method: "POST",
        url: `/api/v1/admin/tenants/${tenantA}/api-keys`,
        headers: bearer(adminToken),
      });
      const key = issued.body.api_key as string;
      const message = (n: number) => ({
        channel: "email",
        provider: "sendgrid",
        to: `remembered${n}@example.com`,
        dedupe_key: `remembered-${n}`,
      });
      const register = (n: number) =>
        call(h.app, { method: "POST", url: "/api/v1/messages", headers: bearer(key), payload: message(n) });
      // Seen once: from now on this process takes it from memory.
      expect((await register(1)).status).toBe(201);
      expect((await register(2)).status).toBe(201);
      // Revoked as another Herald process would: in the database, with nothing said to this one.
      expect(await revokeApiKey(t.database.db, issued.body.id)).toBe(true);
      // A write: refused, and not stored.
      expectProblem(await register(3), 401, "unauthorized");
      // A request that fails before any transaction (a validation failure), and a read.
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/messages",
          headers: bearer(key),
          payload: { to: 1 },
        }),
        401,
        "unauthorized",
      );
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/messages", headers: bearer(key) }),
        401,
        "unauthorized",
      );
      const stored = await call(h.app, {
        method: "GET",
        url: "/api/v1/messages?limit=200",
        headers: bearer(keyA),
      });
      const keys = (stored.body.messages as { to: string }[]).map((m) => m.to);
      expect(keys).toContain("remembered2@example.com");
      expect(keys).not.toContain("remembered3@example.com");
    });

    it("answers 401, with nothing read, to each read outside a transaction with a remembered key another process revoked", async () => {
      for (const url of [
        "/api/v1/events",
        "/api/v1/events?cursor=x",
        "/api/v1/contacts/c1/events",
        "/api/v1/sessions/s1/events",
        "/api/v1/events/count",
        "/api/v1/events/stats",
        "/api/v1/conversations",
        "/api/v1/conversations/00000000-0000-7000-8000-000000000000",
        "/api/v1/conversations/00000000-0000-7000-8000-000000000000/messages",
      ]) {
        const issued = await call(h.app, {
          method: "POST",
          url: `/api/v1/admin/tenants/${tenantA}/api-keys`,
          headers: bearer(adminToken),
        });
        const key = issued.body.api_key as string;
        // Seen once: this process remembers it, and confirms it beside the read (`request.read`).
        expect(
          (await call(h.app, { method: "GET", url: "/api/v1/events", headers: bearer(key) })).status,
        ).toBe(200);
        expect(await revokeApiKey(t.database.db, issued.body.id)).toBe(true);
        const answer = await call(h.app, { method: "GET", url, headers: bearer(key) });
        expect(answer.status, url).toBe(401);
        expect(answer.body.code, url).toBe("unauthorized");
      }
    });

    it("refuses, keeping nothing, an inbound message of a remembered key another process revoked (the one-statement door)", async () => {
      const issued = await call(h.app, {
        method: "POST",
        url: `/api/v1/admin/tenants/${tenantA}/api-keys`,
        headers: bearer(adminToken),
      });
      const key = issued.body.api_key as string;
      const inbound = (id: string) =>
        call(h.app, {
          method: "POST",
          url: "/api/v1/inbound",
          headers: bearer(key),
          payload: {
            channel: "sms",
            provider: "twilio",
            provider_message_id: id,
            from: "+14155550111",
            to: "+14155550100",
            body: "hi",
          },
        });
      expect((await inbound("SMremembered1")).status).toBe(202);
      // Remembered now; its liveness is checked by the intake's own statement.
      const again = await inbound("SMremembered1");
      expect(again.status).toBe(202);
      expect(again.body.duplicate).toBe(true);
      expect((await inbound("SMremembered2")).status).toBe(202);
      expect(await revokeApiKey(t.database.db, issued.body.id)).toBe(true);
      expectProblem(await inbound("SMremembered3"), 401, "unauthorized");
      // Forgotten: the next request looks the key up again, and is refused too.
      expectProblem(await inbound("SMremembered4"), 401, "unauthorized");
      const kept = await query<{ provider_message_id: string }>(
        t.database.db,
        sql`select provider_message_id from inbound_events where tenant_id = ${tenantA} order by 1`,
      );
      expect(kept.map((r) => r.provider_message_id)).toEqual(["SMremembered1", "SMremembered2"]);
    });

    it("answers a request that fails with a remembered live key as it would with any key", async () => {
      await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer(keyB) });
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/messages",
          headers: bearer(keyB),
          payload: { to: 1 },
        }),
        400,
        "validation_failed",
      );
      expectProblem(
        await call(h.app, {
          method: "GET",
          url: "/api/v1/messages/00000000-0000-7000-8000-000000000000",
          headers: bearer(keyB),
        }),
        404,
        "not_found",
      );
    });

    it("guards admin routes with the admin token", async () => {
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/admin/tenants",
          headers: bearer(keyA),
          payload: { name: "x" },
        }),
        401,
        "unauthorized",
      );
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/admin/tenants",
          headers: bearer(adminToken),
          payload: { name: "acme" },
        }),
        409,
        "conflict",
      );
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/admin/tenants/00000000-0000-7000-8000-000000000000/api-keys",
          headers: bearer(adminToken),
        }),
        404,
        "not_found",
      );
    });

    it("creates, lists, reads and deletes sources, and hides them from other tenants", async () => {
      const created = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(keyA),
        payload: {
          provider: "sendgrid",
          name: "main",
          verification: { public_key: sendgridKeys().publicKeyBase64 },
        },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ provider: "sendgrid", name: "main", verified: true });
      expect(created.body.url).toBe(`/api/v1/webhooks/sendgrid/${created.body.id}`);
      const unsigned = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers: bearer(keyA),
        payload: { provider: "twilio" },
      });
      expect(unsigned.body.verified).toBe(false);

      const list = await call(h.app, {
        method: "GET",
        url: "/api/v1/sources?limit=1",
        headers: bearer(keyA),
      });
      expect(list.body.sources).toHaveLength(1);
      expect(list.body.next_cursor).toEqual(expect.any(String));
      const rest = await call(h.app, {
        method: "GET",
        url: `/api/v1/sources?limit=1&cursor=${list.body.next_cursor}`,
        headers: bearer(keyA),
      });
      expect(rest.body.sources).toHaveLength(1);
      expect(rest.body.next_cursor).toBeNull();
      expect(new Set([list.body.sources[0].id, rest.body.sources[0].id])).toEqual(
        new Set([created.body.id, unsigned.body.id]),
      );

      const url = `/api/v1/sources/${created.body.id}`;
      expect((await call(h.app, { method: "GET", url, headers: bearer(keyA) })).body.id).toBe(
        created.body.id,
      );
      expectProblem(await call(h.app, { method: "GET", url, headers: bearer(keyB) }), 404, "not_found");
      expectProblem(await call(h.app, { method: "DELETE", url, headers: bearer(keyB) }), 404, "not_found");
      expect(
        (await call(h.app, { method: "GET", url: "/api/v1/sources", headers: bearer(keyB) })).body.sources,
      ).toEqual([]);
      expect((await call(h.app, { method: "DELETE", url, headers: bearer(keyA) })).status).toBe(204);
      expectProblem(await call(h.app, { method: "GET", url, headers: bearer(keyA) }), 404, "not_found");
    });

    it("pages through rows created in one transaction (one created_at, to the microsecond) without skipping any", async () => {
      const batch = await call(h.app, {
        method: "POST",
        url: "/api/v1/messages/batch",
        headers: bearer(keyB),
        payload: {
          messages: Array.from({ length: 7 }, (_, i) => ({
            channel: "email",
            provider: "sendgrid",
            to: `page${i}@example.com`,
          })),
        },
      });
      expect(batch.status).toBe(201);
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10; page++) {
        const list = await call(h.app, {
          method: "GET",
          url: `/api/v1/messages?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
          headers: bearer(keyB),
        });
        expect(list.status).toBe(200);
        seen.push(...list.body.messages.map((m: { id: string }) => m.id));
        cursor = list.body.next_cursor;
        if (!cursor) break;
      }
      expect(seen).toHaveLength(7);
      expect(new Set(seen)).toEqual(new Set(batch.body.messages.map((m: { id: string }) => m.id)));
      expectProblem(
        await call(h.app, {
          method: "GET",
          url: `/api/v1/messages?cursor=${Buffer.from(JSON.stringify([new Date().toISOString(), "x'"])).toString("base64url")}`,
          headers: bearer(keyB),
        }),
        400,
        "validation_failed",
      );
    });

    it("answers bad input with the contract's problem codes", async () => {
      const headers = { ...bearer(keyA), "content-type": "application/json" };
      expectProblem(
        await call(h.app, { method: "POST", url: "/api/v1/sources", headers, payload: '{"provider":' }),
        400,
        "invalid_json",
      );
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources?colour=red", headers: bearer(keyA) }),
        400,
        "validation_failed",
      );
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources?limit=5000", headers: bearer(keyA) }),
        400,
        "validation_failed",
      );
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources?cursor=garbage", headers: bearer(keyA) }),
        400,
        "validation_failed",
      );
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/sources/not-a-uuid", headers: bearer(keyA) }),
        400,
        "validation_failed",
      );
      const invalid = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers,
        payload: { provider: "carrier-pigeon" },
      });
      expectProblem(invalid, 400, "validation_failed");
      expect(invalid.body.errors[0].path).toMatch(/^\/body/);
      const missingSecret = await call(h.app, {
        method: "POST",
        url: "/api/v1/sources",
        headers,
        payload: { provider: "postmark", verification: { username: "u" } },
      });
      expectProblem(missingSecret, 400, "validation_failed");
      expect(missingSecret.body.errors).toEqual([
        { path: "/body/verification/password", message: "is required" },
      ]);
      // A SendGrid key that is not a P-256 public key would fail every delivery's signature: refused up front,
      // and a private key is never stored, though its public half could be read from it.
      const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
      const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey;
      const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
      for (const public_key of [
        "not-a-key",
        Buffer.from("garbage").toString("base64"),
        rsa.export({ format: "der", type: "spki" }).toString("base64"),
        p384.export({ format: "der", type: "spki" }).toString("base64"),
        p256.export({ format: "pem", type: "pkcs8" }).toString(),
        p256.export({ format: "pem", type: "sec1" }).toString(),
      ]) {
        const badKey = await call(h.app, {
          method: "POST",
          url: "/api/v1/sources",
          headers,
          payload: { provider: "sendgrid", verification: { public_key } },
        });
        expectProblem(badKey, 400, "validation_failed");
        expect(badKey.body.errors).toEqual([
          { path: "/body/verification/public_key", message: "is not a P-256 public key" },
        ]);
      }
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/sources",
          headers,
          payload: JSON.stringify({ provider: "sendgrid", name: "x".repeat(5000) }),
        }),
        413,
        "payload_too_large",
      );
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/sources",
          headers: { ...bearer(keyA), "content-type": "text/plain" },
          payload: "provider=sendgrid",
        }),
        415,
        "unsupported_media_type",
      );
      expectProblem(
        await call(h.app, { method: "GET", url: "/api/v1/nothing-here", headers: bearer(keyA) }),
        404,
        "not_found",
      );
    });

    it("serves health, metrics and the OpenAPI document", async () => {
      expect((await call(h.app, { method: "GET", url: "/healthz" })).body).toEqual({ status: "ok" });
      expect((await call(h.app, { method: "GET", url: "/readyz" })).status).toBe(200);
      const metrics = await call(h.app, { method: "GET", url: "/metrics" });
      expect(metrics.body).toContain("herald_http_request_duration_seconds_bucket");
      expect(metrics.body).toContain('route="/api/v1/sources"');
      expect(metrics.body).toContain("herald_process_resident_memory_bytes");
      const docs = await call(h.app, { method: "GET", url: "/docs/json" });
      expect(Object.keys(docs.body.paths)).toEqual(
        expect.arrayContaining(["/api/v1/sources", "/api/v1/sources/{id}", "/api/v1/admin/tenants"]),
      );
    });
  });
}

describe("admin routes without HERALD_ADMIN_TOKEN", () => {
  it("are not there (404)", async () => {
    const t = await createTestDatabase("pglite");
    const h = await buildApp({
      database: t.database,
      config: { adminToken: undefined, bodyLimitBytes: 1024 * 1024 },
    });
    try {
      expectProblem(
        await call(h.app, {
          method: "POST",
          url: "/api/v1/admin/tenants",
          headers: bearer("anything-at-all-long"),
          payload: { name: "x" },
        }),
        404,
        "not_found",
      );
    } finally {
      await h.app.close();
      await t.drop();
    }
  });
});
