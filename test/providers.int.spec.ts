import { readFileSync } from "node:fs";
import { getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type HeraldApp } from "../src/api/app.js";
import { createTestDatabase, type TestDatabase } from "./support/databases.js";
import { bearer, call, expectProblem, newTenantKey } from "./support/http.js";
import { sampleBatch } from "./support/sendgrid.js";

const adminToken = "test-admin-token-0123456789";

/** `/api/v1/webhooks/{provider}/{source_id}` answers for the registry's providers only. */
describe("provider webhooks through the registry", () => {
  let t: TestDatabase;
  let h: HeraldApp;
  let key: string;

  const createSource = async (payload: Record<string, unknown>) => {
    const created = await call(h.app, {
      method: "POST",
      url: "/api/v1/sources",
      headers: bearer(key),
      payload,
    });
    expect(created.status).toBe(201);
    return created.body as { id: string; url: string };
  };
  const post = (url: string, payload: unknown = sampleBatch()) =>
    call(h.app, {
      method: "POST",
      url,
      headers: { "content-type": "application/json" },
      payload: JSON.stringify(payload),
    });

  beforeAll(async () => {
    t = await createTestDatabase("pglite");
    h = await buildApp({ database: t.database, config: { adminToken, bodyLimitBytes: 1 << 20 } });
    key = await newTenantKey(h.app, adminToken, "registry");
  });
  afterAll(async () => {
    await h?.app.close();
    await t?.drop();
  });

  it("answers a registered provider's delivery with its module's answer", async () => {
    const source = await createSource({ provider: "sendgrid" });
    expect(source.url).toBe(`/api/v1/webhooks/sendgrid/${source.id}`);
    const answer = await post(source.url);
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toMatch(/^application\/json/);
    expect(answer.body).toEqual({ delivery_id: expect.any(Number), events: sampleBatch().length });
  });

  it("takes a Twilio source's signed status callback (an empty 200) and refuses an unsigned one (401)", async () => {
    const authToken = "9f2d7c31b8e04a6f5c1d2e3f4a5b6c7d";
    const source = await createSource({ provider: "twilio", verification: { auth_token: authToken } });
    expect(source.url).toBe(`/api/v1/webhooks/twilio/${source.id}`);
    const body = readFileSync(new URL("./fixtures/twilio/status-delivered.form", import.meta.url));
    // app.inject calls http://localhost:80; Twilio signs the URL as configured (here without the port).
    const signature = getExpectedTwilioSignature(
      authToken,
      `http://localhost${source.url}`,
      Object.fromEntries(new URLSearchParams(body.toString())),
    );
    const send = (headers: Record<string, string>) =>
      call(h.app, {
        method: "POST",
        url: source.url,
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        payload: body,
      });
    const answer = await send({ "x-twilio-signature": signature });
    // Twilio reads nothing from a status callback's answer (inbound SMS get TwiML: inbound.int.spec.ts).
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toMatch(/^text\/plain/);
    expect(answer.body).toBe("");
    expectProblem(await send({}), 401, "invalid_signature");
    expectProblem(await send({ "x-twilio-signature": `${signature.slice(1)}A` }), 401, "invalid_signature");
  });

  it("is 404 for a name that is not a provider's, and for a source under another provider's name", async () => {
    const mailgun = await createSource({ provider: "mailgun", verification: { signing_key: "secret" } });
    const sendgrid = await createSource({ provider: "sendgrid" });
    for (const name of ["nope", "SendGrid", "Mailgun", "__proto__", "constructor"])
      expectProblem(await post(`/api/v1/webhooks/${name}/${sendgrid.id}`), 404, "not_found");
    // A source is found under its own provider only.
    expectProblem(await post(`/api/v1/webhooks/sendgrid/${mailgun.id}`), 404, "not_found");
    expectProblem(await post(`/api/v1/webhooks/mailgun/${sendgrid.id}`), 404, "not_found");
  });

  it("checks each provider's verification settings when a source is created", async () => {
    const missing = await call(h.app, {
      method: "POST",
      url: "/api/v1/sources",
      headers: bearer(key),
      payload: { provider: "postmark", verification: { username: "u" } },
    });
    expectProblem(missing, 400, "validation_failed");
    expect(missing.body.detail).toBe("postmark verification needs username, password");
    expect(missing.body.errors).toEqual([{ path: "/body/verification/password", message: "is required" }]);
  });
});
