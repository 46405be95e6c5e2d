import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { createProcessor } from "../src/ingest/processor.js";
import { createTestDatabase, hasPostgres, type TestDatabase } from "./support/databases.js";
import { count } from "./support/fixtures.js";
import { bearer, call } from "./support/http.js";
import { sampleBatch, sendgridKeys } from "./support/sendgrid.js";
import { eventually } from "./support/wait.js";

/**
 * Hostile traffic over real HTTP, interleaved with valid deliveries: every bad request gets its 4xx
 * problem, the server stays up, and every valid delivery beside them is processed.
 */
describe("SendGrid webhook under hostile input", () => {
  let t: TestDatabase;
  let h: HeraldApp;
  let base: string;
  const keys = sendgridKeys();

  beforeAll(async () => {
    t = await createTestDatabase(hasPostgres() ? "postgres" : "pglite");
    h = await buildApp({
      database: t.database,
      config: { adminToken: "hostile-admin-token-0123456789", bodyLimitBytes: 5 * 1024 * 1024 },
    });
    base = await h.app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(async () => {
    await h?.app.close();
    await t?.drop();
  });

  it("answers 50+ hostile requests with the contract's codes and processes every valid delivery", async () => {
    const tenant = await call(h.app, {
      method: "POST",
      url: "/api/v1/admin/tenants",
      headers: bearer("hostile-admin-token-0123456789"),
      payload: { name: "h" },
    });
    const source = await call(h.app, {
      method: "POST",
      url: "/api/v1/sources",
      headers: bearer(tenant.body.api_key),
      payload: { provider: "sendgrid", verification: { public_key: keys.publicKeyBase64 } },
    });
    const url = `${base}${source.body.url}`;
    const signed = (body: string | Buffer) => ({ "content-type": "application/json", ...keys.sign(body) });
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const event = sampleBatch()[0]!;
    type Case = {
      name: string;
      body: string | Buffer;
      headers?: Record<string, string>;
      status: number;
      code: string;
      url?: string;
    };
    const cases: Case[] = [
      { name: "not json", body: "hello", status: 400, code: "invalid_json" },
      { name: "truncated json", body: '[{"event":', status: 400, code: "invalid_json" },
      { name: "empty body", body: "", status: 400, code: "invalid_json" },
      { name: "object, not array", body: JSON.stringify(event), status: 400, code: "validation_failed" },
      { name: "array of numbers", body: "[1,2,3]", status: 400, code: "validation_failed" },
      { name: "array of strings", body: '["a"]', status: 400, code: "validation_failed" },
      {
        name: "array with null",
        body: `[${JSON.stringify(event)},null]`,
        status: 400,
        code: "validation_failed",
      },
      { name: "nested array", body: "[[]]", status: 400, code: "validation_failed" },
      { name: "bare string", body: '"x"', status: 400, code: "validation_failed" },
      { name: "bare number", body: "42", status: 400, code: "validation_failed" },
      { name: "null", body: "null", status: 400, code: "validation_failed" },
      { name: "deep nesting", body: deep, status: 400, code: "validation_failed" },
      // Valid JSON that jsonb cannot hold: refused at the door, not accepted and then failing forever.
      {
        name: "deep nesting inside an event",
        body: `[{"event":"open","x":${"[".repeat(30_000)}${"]".repeat(30_000)}}]`,
        status: 400,
        code: "validation_failed",
      },
      {
        name: "NUL escape in a value",
        body: '[{"event":"open","email":"a\\u0000b"}]',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "NUL escape in a key",
        body: '[{"event":"open","a\\u0000":1}]',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "lone high surrogate",
        body: '[{"event":"open","email":"\\ud800x"}]',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "lone low surrogate",
        body: '[{"event":"open","email":"x\\udc00"}]',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "number too large for numeric",
        body: '[{"event":"open","email":"a@x.io","timestamp":1e131072}]',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "number with too many decimal places for numeric",
        body: '[{"event":"open","email":"a@x.io","score":1e-16384}]',
        status: 400,
        code: "validation_failed",
      },
      {
        name: "invalid utf-8",
        body: Buffer.from([0x5b, 0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d, 0x5d]),
        status: 400,
        code: "invalid_json",
      },
      { name: "utf-16 bom", body: Buffer.from("\ufeff[]", "utf16le"), status: 400, code: "invalid_json" },
      { name: "6 MiB", body: Buffer.alloc(6 * 1024 * 1024, 0x20), status: 413, code: "payload_too_large" },
    ];
    const body = JSON.stringify([event]);
    const signatureCases: Case[] = [
      {
        name: "no signature",
        body,
        headers: { "content-type": "application/json" },
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "no timestamp",
        body,
        headers: {
          "content-type": "application/json",
          "x-twilio-email-event-webhook-signature": keys.sign(body)["x-twilio-email-event-webhook-signature"],
        },
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "garbled signature",
        body,
        headers: { ...signed(body), "x-twilio-email-event-webhook-signature": "%%%garbled%%%" },
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "empty signature",
        body,
        headers: { ...signed(body), "x-twilio-email-event-webhook-signature": "" },
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "wrong key",
        body,
        headers: { "content-type": "application/json", ...sendgridKeys().sign(body) },
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "other timestamp",
        body,
        headers: { ...signed(body), "x-twilio-email-event-webhook-timestamp": "1" },
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "body changed",
        body: `${body} `,
        headers: signed(body),
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "huge signature",
        body,
        headers: { ...signed(body), "x-twilio-email-event-webhook-signature": "A".repeat(5000) },
        status: 401,
        code: "invalid_signature",
      },
      {
        name: "unknown source",
        body,
        headers: signed(body),
        status: 404,
        code: "not_found",
        url: url.replace(/[0-9a-f]{6}$/, "000000"),
      },
      {
        name: "not a uuid",
        body,
        headers: signed(body),
        status: 404,
        code: "not_found",
        url: `${base}/api/v1/webhooks/sendgrid/../../admin`,
      },
    ];
    // Wrong types and missing fields inside valid arrays are accepted and stored (as `unknown` if need be).
    const odd = [
      [{ event: 42 }],
      [{ timestamp: "soon" }],
      [{ email: ["x"], event: "open" }],
      [{ event: "bounce", type: { nested: true }, asm_group_id: "x" }],
      [{}],
    ];
    const all: Case[] = [];
    for (let i = 0; i < 3; i++)
      all.push(...cases.filter((c) => c.name !== "6 MiB" || i === 0), ...signatureCases);
    expect(all.length).toBeGreaterThanOrEqual(50);

    const valid = Array.from({ length: 20 }, (_, i) =>
      JSON.stringify(sampleBatch().map((e) => ({ ...e, sg_event_id: `${e.sg_event_id}-${i}` }))),
    );
    const results = await Promise.all([
      ...all.map(async (c) => {
        const response = await fetch(c.url ?? url, {
          method: "POST",
          headers: c.headers ?? signed(c.body),
          body: c.body,
        }).catch((error: unknown) => ({ status: 0, error }) as const);
        if (!("json" in response)) return { c, status: 0, code: "connection error" };
        const problem = (await response.json().catch(() => ({}))) as {
          code?: string;
          errors?: { path: string }[];
        };
        return {
          c,
          status: response.status,
          code: problem.code,
          errors: problem.errors,
          type: response.headers.get("content-type"),
        };
      }),
      ...valid.map(async (b) => {
        const response = await fetch(url, { method: "POST", headers: signed(b), body: b });
        return {
          c: { name: "valid", status: 200, code: undefined },
          status: response.status,
          code: undefined,
          type: "",
        };
      }),
      ...odd.map(async (events) => {
        const b = JSON.stringify(events);
        const response = await fetch(url, { method: "POST", headers: signed(b), body: b });
        return {
          c: { name: "odd", status: 200, code: undefined },
          status: response.status,
          code: undefined,
          type: "",
        };
      }),
    ]);
    for (const r of results) {
      expect({ case: r.c.name, status: r.status, code: r.code }).toEqual({
        case: r.c.name,
        status: r.c.status,
        code: r.c.code,
      });
      if (r.status >= 400 && r.status !== 413) expect(r.type).toMatch(/application\/problem\+json/);
      // API.md: a validation failure names where, as `errors: [{ path, message }]`.
      if (r.code === "validation_failed") expect(r.errors?.[0]?.path, r.c.name).toMatch(/^\/body/);
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    const worker = createProcessor({ db: t.database.db, listen: t.database.listen, pollIntervalMs: 50 });
    await worker.start();
    await eventually(
      async () =>
        (await count(t.database.db, "webhook_deliveries", "status in ('pending', 'processing')")) === 0,
      20_000,
    );
    await worker.stop();
    expect(await count(t.database.db, "message_events", "provider = 'sendgrid'")).toBe(20 * 11 + odd.length);
    expect(await count(t.database.db, "message_events", "type = 'unknown'")).toBe(3);
    expect(await count(t.database.db, "webhook_deliveries", "status = 'dead'")).toBe(0);
  }, 60_000);
});
