import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { canonicalEventTypes } from "../src/domain/messageStatus.js";
import { expectedSignature, resend, signingKey } from "../src/providers/resend.js";
import type { IncomingRequest } from "../src/providers/types.js";
import { authContext } from "./support/authContext.js";

const fixtures = new URL("./fixtures/resend/", import.meta.url);
const body = (name: string) => readFileSync(new URL(name, fixtures));
const receivedAt = new Date("2026-11-22T12:00:00Z");
const emailId = "4ef9a417-02e9-4d39-ad75-9611e0fcc33c";
const secret = `whsec_${randomBytes(24).toString("base64")}`;

/** A request as Resend sends it: signed by the Standard Webhooks library itself, at `at`. */
function signed(
  payload: Buffer,
  at: Date,
  id = "msg_2pS7ZbQx1YQfK8yR3xv5eM0aB1c",
  key = secret,
): IncomingRequest {
  const signature = new Webhook(key).sign(id, at, payload);
  return {
    headers: {
      "svix-id": id,
      "svix-timestamp": String(Math.floor(at.getTime() / 1000)),
      "svix-signature": signature,
    },
    body: payload,
    remoteIp: undefined,
    publicUrl: "https://herald.example.com/api/v1/webhooks/resend/x",
  };
}

const normalized = (name: string, headers?: IncomingRequest["headers"]) => {
  const parsed = resend.parse(body(name), headers);
  if (!parsed.ok) throw new Error(parsed.detail);
  return { raw: parsed.events[0]!, event: resend.normalize(parsed.events[0]!, receivedAt) };
};

describe("Resend's events, normalized", () => {
  it.each([
    ["email.sent.json", "processed", "2026-11-20T16:00:01.000Z"],
    ["email.scheduled.json", "scheduled", "2026-11-20T15:59:59.000Z"],
    ["email.delivered.json", "delivered", "2026-11-20T16:00:03.000Z"],
    ["email.delivery_delayed.json", "deferred", "2026-11-20T16:00:02.500Z"],
    ["email.complained.json", "spamreport", "2026-11-20T18:00:00.000Z"],
    ["email.bounced.json", "bounce", "2026-11-20T16:00:04.000Z"],
    ["email.opened.json", "open", "2026-11-20T16:10:00.000Z"],
    ["email.clicked.json", "click", "2026-11-20T16:11:00.000Z"],
    ["email.failed.json", "dropped", "2026-11-20T16:00:01.500Z"],
    ["email.suppressed.json", "dropped", "2026-11-20T16:00:01.200Z"],
  ])("%s is %s, at its time, linked by data.email_id", (file, type, at) => {
    const { raw, event } = normalized(file);
    expect(event.type).toBe(type);
    expect(event.eventAt.toISOString()).toBe(at);
    expect(event.providerMessageId).toBe(emailId);
    expect(event.recipient).toBe("delivered@example.com");
    expect(event.payload).toBe(raw);
  });

  it("every fixture is a documented type, each a distinct event", () => {
    const files = readdirSync(fixtures).filter((f) => f.endsWith(".json"));
    expect(files).toHaveLength(11);
    const keys = files.map((f) => normalized(f).event.dedupeKey);
    expect(new Set(keys).size).toBe(files.length);
  });

  it("keeps inbound mail (email.received) and types it does not know as unknown, with their payload", () => {
    const { raw, event } = normalized("email.received.json");
    expect(event.type).toBe("unknown");
    expect(event.payload).toBe(raw);
    expect(event.providerMessageId).toBe("56761188-7520-42d8-8898-ff6fc54ce618");
    for (const type of ["domain.created", "contact.updated", "email.future_thing", 7]) {
      const other = { type, created_at: "2026-11-20T16:00:00Z", data: {} };
      expect(resend.normalize(other, receivedAt).type).toBe("unknown");
      expect(canonicalEventTypes).toContain(resend.normalize(other, receivedAt).type);
    }
    expect(resend.normalize({}, receivedAt)).toMatchObject({ type: "unknown", eventAt: receivedAt });
  });

  it("keeps what a bounce, a click and a failure say", () => {
    expect(normalized("email.bounced.json").event).toMatchObject({
      bounceClassification: "Permanent/Suppressed",
      reason: expect.stringMatching(/suppression list/),
    });
    expect(normalized("email.clicked.json").event).toMatchObject({
      url: "https://example.com/confirm",
      ip: "203.0.113.9",
      userAgent: expect.stringMatching(/^Mozilla/),
    });
    expect(normalized("email.failed.json").event.reason).toBe("reached_daily_quota");
    // A transient bounce is a soft one: deferred, not a permanent failure that suppresses.
    const raw = JSON.parse(body("email.bounced.json").toString());
    raw.data.bounce.type = "Transient";
    expect(resend.normalize(raw, receivedAt).type).toBe("deferred");
  });

  it("names the recipient only when the email had one, and reads herald_message_id from its tags", () => {
    const raw = JSON.parse(body("email.delivered.json").toString());
    expect(
      resend.normalize({ ...raw, data: { ...raw.data, to: ["a@x.com", "b@x.com"] } }, receivedAt).recipient,
    ).toBeNull();
    const id = "0191d5a4-3b2c-7d4e-8f60-123456789abc";
    expect(
      resend.normalize({ ...raw, data: { ...raw.data, tags: { herald_message_id: id } } }, receivedAt)
        .heraldMessageId,
    ).toBe(id);
    const listed = { ...raw, data: { ...raw.data, tags: [{ name: "herald_message_id", value: id }] } };
    expect(resend.normalize(listed, receivedAt).heraldMessageId).toBe(id);
  });

  it("is keyed by svix-id, the same on every retry, from the headers parse is given; else by its natural fields", () => {
    const first = normalized("email.delivered.json", { "svix-id": "msg_abc" }).event;
    expect(first).toMatchObject({ dedupeKey: "msg_abc", providerEventId: "msg_abc" });
    expect(normalized("email.delivered.json", { "webhook-id": "msg_abc" }).event.dedupeKey).toBe("msg_abc");
    expect(normalized("email.delivered.json", { "svix-id": "a very odd id" }).event.dedupeKey).toMatch(
      /^k:[0-9a-f]{64}$/,
    );
    const bare = normalized("email.delivered.json").event;
    expect(bare.dedupeKey).toMatch(/^h:[0-9a-f]{64}$/);
    expect(bare.providerEventId).toBeNull();
    expect(normalized("email.delivered.json").event.dedupeKey).toBe(bare.dedupeKey);
    // The id travels beside the payload, not in it: the stored payload is the body as sent.
    const { raw } = normalized("email.delivered.json", { "svix-id": "msg_abc" });
    expect(JSON.parse(JSON.stringify(raw))).toEqual(JSON.parse(body("email.delivered.json").toString()));
    expect(Object.keys(raw)).toEqual(["type", "created_at", "data"]);
  });
});

describe("Resend's signatures", () => {
  const now = new Date("2026-11-22T12:00:00Z");
  const context = authContext(() => now);
  const payload = body("email.delivered.json");
  const check = async (request: IncomingRequest, settings = { secret }) =>
    (await resend.authenticate(request, settings, context))?.code;

  it("computes the Standard Webhooks library's signature, and the library verifies ours", () => {
    const id = "msg_1";
    const key = signingKey(secret)!;
    const ours = `v1,${expectedSignature(key, id, String(Math.floor(now.getTime() / 1000)), payload)}`;
    expect(new Webhook(secret).sign(id, now, payload)).toBe(ours);
    const fresh = new Date();
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(fresh.getTime() / 1000)),
      "webhook-signature": `v1,${expectedSignature(key, id, String(Math.floor(fresh.getTime() / 1000)), payload)}`,
    };
    expect(new Webhook(secret).verify(payload, headers)).toEqual(JSON.parse(payload.toString()));
  });

  it("accepts a request the library signed, within five minutes either way", async () => {
    expect(await check(signed(payload, now))).toBeUndefined();
    expect(await check(signed(payload, new Date(now.getTime() - 4 * 60_000)))).toBeUndefined();
    expect(await check(signed(payload, new Date(now.getTime() + 4 * 60_000)))).toBeUndefined();
  });

  it("refuses a stale or future timestamp, by the context's clock", async () => {
    expect(await check(signed(payload, new Date(now.getTime() - 6 * 60_000)))).toBe("invalid_signature");
    expect(await check(signed(payload, new Date(now.getTime() + 6 * 60_000)))).toBe("invalid_signature");
    const request = signed(payload, now);
    expect(await check({ ...request, headers: { ...request.headers, "svix-timestamp": "soon" } })).toBe(
      "invalid_signature",
    );
  });

  it("refuses another secret's signature, a changed body, id or timestamp, and missing headers", async () => {
    const other = `whsec_${randomBytes(24).toString("base64")}`;
    expect(await check(signed(payload, now, "msg_1", other))).toBe("invalid_signature");
    const request = signed(payload, now);
    expect(await check({ ...request, body: Buffer.from(`${payload.toString()} `) })).toBe(
      "invalid_signature",
    );
    expect(await check({ ...request, headers: { ...request.headers, "svix-id": "msg_2" } })).toBe(
      "invalid_signature",
    );
    const later = String(Math.floor(now.getTime() / 1000) + 1);
    expect(await check({ ...request, headers: { ...request.headers, "svix-timestamp": later } })).toBe(
      "invalid_signature",
    );
    for (const name of ["svix-id", "svix-timestamp", "svix-signature"]) {
      const headers = { ...request.headers };
      delete headers[name];
      expect(await check({ ...request, headers }), name).toBe("invalid_signature");
    }
    const v1a = String(request.headers["svix-signature"]).replace("v1,", "v1a,");
    expect(await check({ ...request, headers: { ...request.headers, "svix-signature": v1a } })).toBe(
      "invalid_signature",
    );
  });

  it("takes any one of several signatures (a secret being rotated), and the webhook-* header names", async () => {
    const request = signed(payload, now);
    const rotated = `v1,${randomBytes(32).toString("base64")} ${request.headers["svix-signature"]}`;
    expect(
      await check({ ...request, headers: { ...request.headers, "svix-signature": rotated } }),
    ).toBeUndefined();
    const standard = {
      "webhook-id": request.headers["svix-id"],
      "webhook-timestamp": request.headers["svix-timestamp"],
      "webhook-signature": request.headers["svix-signature"],
    };
    expect(await check({ ...request, headers: standard })).toBeUndefined();
  });

  it("lets an unverified source through; takes only a whsec_ secret", async () => {
    expect(await resend.authenticate(signed(payload, new Date(0)), null, context)).toBeUndefined();
    expect(resend.validateVerification({ secret })).toBeUndefined();
    for (const bad of ["whsec_", "whsec_!!!", "whsec_c2hvcnQ="])
      expect(resend.validateVerification({ secret: bad })?.errors, bad).toEqual([
        { field: "secret", message: "is not a whsec_ signing secret" },
      ]);
  });
});
