import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { publicUrlOf } from "../src/api/publicUrl.js";
import { canonicalEventTypes } from "../src/domain/messageStatus.js";
import { channels, providers } from "../src/domain/vocabularies.js";
import { HeraldError } from "../src/errors.js";
import { providerFor, sourceProvider, webhookProviderNames } from "../src/providers/registry.js";
import { authContext } from "./support/authContext.js";
import { sendgridKeys } from "./support/sendgrid.js";

const fixturesOf = (name: string) => new URL(`./fixtures/${name}/`, import.meta.url);
const receivedAt = new Date("2026-11-22T12:00:00Z");

/**
 * The contract every module of the registry keeps, checked on its fixtures (`test/fixtures/<provider>/`, every
 * `.json` or `.form` file a delivery body as the provider sends it: JSON, or form-encoded as Twilio's). A new provider gets these for free once it has a
 * registry line and fixtures; its own rules are tested in its own spec (as `sendgrid.unit.spec.ts`).
 */
describe.each(webhookProviderNames())("provider module %s", (name) => {
  const provider = providerFor(name)!;

  it("is registered under its own name, for a channel, as a source provider too", async () => {
    expect(provider.name).toBe(name);
    expect(providers).toContain(provider.name);
    expect(channels).toContain(provider.channel);
    expect(sourceProvider(provider.name)).toBe(provider);
  });

  it("refuses verification settings without its fields, naming each", async () => {
    const refusal = provider.validateVerification({});
    expect(provider.verificationFields.length).toBeGreaterThan(0);
    expect(refusal?.errors.map((e) => e.field)).toEqual([...provider.verificationFields]);
  });

  it("lets an unverified source's request through, and keeps only lower-case headers", async () => {
    const request = { headers: {}, body: Buffer.from("[]"), remoteIp: undefined, publicUrl: "https://h/x" };
    expect(await provider.authenticate(request, null, authContext())).toBeUndefined();
    for (const header of provider.keptHeaders) expect(header).toBe(header.toLowerCase());
  });

  it("parses each fixture and normalizes every event into the canonical shape, the same each time", async () => {
    const files = existsSync(fixturesOf(name))
      ? readdirSync(fixturesOf(name)).filter((f) => /\.(json|form)$/.test(f))
      : [];
    expect(files.length, `fixtures under test/fixtures/${name}/`).toBeGreaterThan(0);
    for (const file of files) {
      const parsed = provider.parse(readFileSync(new URL(file, fixturesOf(name))));
      expect(parsed.ok, file).toBe(true);
      if (!parsed.ok) continue;
      expect(parsed.events.length).toBeGreaterThan(0);
      for (const raw of parsed.events) {
        const event = provider.normalize(raw, receivedAt);
        expect(canonicalEventTypes).toContain(event.type);
        expect(event.eventAt.getTime()).not.toBeNaN();
        expect(event.eventAt.getTime()).toBe(provider.eventTime(raw, receivedAt).getTime());
        expect(event.dedupeKey.length).toBeGreaterThan(0);
        expect(provider.normalize(raw, receivedAt).dedupeKey).toBe(event.dedupeKey);
        expect(event.payload).toBe(raw);
        // The provider's own name of the type, shown beside the canonical one.
        expect(provider.rawType(raw), `${file}: raw type`).toMatch(/\S/);
        if (event.providerMessageId !== null)
          expect(provider.linkCandidates(event.providerMessageId)[0]).toBe(event.providerMessageId);
      }
      const keys = parsed.events.map((raw) => provider.normalize(raw, receivedAt).dedupeKey);
      expect(new Set(keys).size, `${file}: distinct events, distinct keys`).toBe(keys.length);
    }
  });

  it("refuses a body that is not a delivery, saying where", async () => {
    for (const body of ["", "{", "\xff"]) {
      const parsed = provider.parse(Buffer.from(body, "latin1"));
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.path).toMatch(/^\/body/);
    }
  });

  it("answers a kept delivery with a success", async () => {
    const answer = provider.answer({ deliveryId: 7, events: 3 });
    expect(answer.status).toBeGreaterThanOrEqual(200);
    expect(answer.status).toBeLessThan(300);
  });
});

describe("provider registry", () => {
  it("finds only registered providers, by their exact name", async () => {
    expect(providerFor("sendgrid")?.name).toBe("sendgrid");
    expect(providerFor("twilio")?.name).toBe("twilio");
    expect(providerFor("mailgun")?.name).toBe("mailgun");
    for (const name of [
      "SendGrid",
      "Twilio",
      "Mailgun",
      "nope",
      "",
      "__proto__",
      "constructor",
      "toString",
      "hasOwnProperty",
    ])
      expect(providerFor(name), name).toBeUndefined();
  });

  it("checks the verification settings of every provider a source may be for", async () => {
    for (const name of providers) {
      const settings = sourceProvider(name);
      expect(settings.name).toBe(name);
      const refusal = settings.validateVerification({});
      expect(refusal?.detail).toBe(`${name} verification needs ${settings.verificationFields.join(", ")}`);
      expect(refusal?.errors.every((e) => e.message === "is required")).toBe(true);
    }
    expect(sourceProvider("twilio").channel).toBe("sms");
    expect(sourceProvider("twilio").validateVerification({ auth_token: "t" })).toBeUndefined();
    expect(sourceProvider("postmark").validateVerification({ username: "u" })?.errors).toEqual([
      { field: "password", message: "is required" },
    ]);
  });
});

describe("SendGrid's module", () => {
  const sendgrid = providerFor("sendgrid")!;
  const keys = sendgridKeys();
  const body = Buffer.from(readFileSync(new URL("basic-batch.json", fixturesOf("sendgrid"))));
  const request = (headers: Record<string, string>) => ({
    headers,
    body,
    remoteIp: undefined,
    publicUrl: "https://herald.example.com/api/v1/webhooks/sendgrid/x",
  });

  it("takes a P-256 public key only", async () => {
    expect(sendgrid.validateVerification({ public_key: keys.publicKeyBase64 })).toBeUndefined();
    expect(sendgrid.validateVerification({ public_key: keys.publicKeyPem })).toBeUndefined();
    expect(sendgrid.validateVerification({ public_key: "not a key" })).toEqual({
      detail: "public_key is not a P-256 public key (base64 DER or PEM), as SendGrid shows it",
      errors: [{ field: "public_key", message: "is not a P-256 public key" }],
    });
  });

  it("authenticates a signed source's request by its signature over the exact bytes", async () => {
    const settings = { public_key: keys.publicKeyBase64 };
    expect(await sendgrid.authenticate(request(keys.sign(body)), settings, authContext())).toBeUndefined();
    const unsigned = await sendgrid.authenticate(request({}), settings, authContext());
    expect(unsigned).toBeInstanceOf(HeraldError);
    expect(unsigned?.code).toBe("invalid_signature");
    const other = sendgridKeys().sign(body);
    expect((await sendgrid.authenticate(request(other), settings, authContext()))?.code).toBe(
      "invalid_signature",
    );
  });

  it("answers with the delivery id and the number of events, as JSON", async () => {
    expect(sendgrid.answer({ deliveryId: 7, events: 3 })).toEqual({
      status: 200,
      json: { delivery_id: 7, events: 3 },
    });
  });
});

describe("a webhook request's public URL", () => {
  const request = (headers: Record<string, string> = {}) => ({
    protocol: "http" as const,
    host: "10.0.0.5:3000",
    url: "/api/v1/webhooks/twilio/abc?x=1",
    headers: { host: "10.0.0.5:3000", ...headers },
  });
  const forwarded = {
    "x-forwarded-proto": "http, https",
    "x-forwarded-host": "evil.example, herald.example.com",
  };

  it("is HERALD_PUBLIC_URL followed by the path and query, when set", async () => {
    expect(
      publicUrlOf(request(forwarded), { publicUrl: "https://herald.example.com/hooks", trustProxy: true }),
    ).toBe("https://herald.example.com/hooks/api/v1/webhooks/twilio/abc?x=1");
  });

  it("else is the request's own, its forwarding headers ignored unless proxies are trusted", async () => {
    expect(publicUrlOf(request(forwarded))).toBe("http://10.0.0.5:3000/api/v1/webhooks/twilio/abc?x=1");
    expect(publicUrlOf(request(forwarded), { trustProxy: true })).toBe(
      "https://herald.example.com/api/v1/webhooks/twilio/abc?x=1",
    );
    // A scheme other than http(s) is not believed; no forwarded host leaves the Host header.
    expect(publicUrlOf(request({ "x-forwarded-proto": "gopher" }), { trustProxy: true })).toBe(
      "http://10.0.0.5:3000/api/v1/webhooks/twilio/abc?x=1",
    );
  });
});
