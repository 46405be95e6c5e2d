import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { canonicalEventTypes, emailEventTypes } from "../src/domain/messageStatus.js";
import { basicCredentials, bounceTypes, postmark } from "../src/providers/postmark.js";
import type { IncomingRequest } from "../src/providers/types.js";
import { authContext } from "./support/authContext.js";

// Every constant-time comparison counted, to see that a wrong username does not stop the password's.
const compared = vi.hoisted(() => ({ calls: 0 }));
vi.mock("../src/domain/apiKey.js", async (importOriginal) => {
  const original = await importOriginal<typeof import("../src/domain/apiKey.js")>();
  return {
    ...original,
    secretsEqual: (a: string, b: string) => {
      compared.calls++;
      return original.secretsEqual(a, b);
    },
  };
});

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`./fixtures/postmark/${name}`, import.meta.url), "utf8"));
const receivedAt = new Date("2026-11-22T12:00:00Z");
const messageId = "0a129aee-e1cd-480d-b08d-4f48548ff48d";

describe("Postmark's events, normalized", () => {
  it.each([
    ["delivery.json", "delivered", "2026-11-20T16:33:54.907Z", null],
    ["bounce-hard.json", "bounce", "2026-11-20T16:40:12.000Z", "692560172"],
    ["bounce-soft.json", "deferred", "2026-11-20T16:41:00.000Z", "692560173"],
    ["bounce-blocked.json", "blocked", "2026-11-20T16:42:00.000Z", "692560174"],
    ["bounce-transient.json", "deferred", "2026-11-20T16:38:00.000Z", "692560175"],
    ["spam-complaint.json", "spamreport", "2026-11-21T09:00:00.000Z", "42"],
    ["open.json", "open", "2026-11-20T17:01:02.000Z", null],
    ["click.json", "click", "2026-11-20T17:02:30.000Z", null],
    ["subscription-change.json", "unsubscribe", "2026-11-21T10:00:00.000Z", null],
    ["subscription-change-reactivated.json", "group_resubscribe", "2026-11-22T10:00:00.000Z", null],
  ])("%s is %s, at its own time, linked by MessageID", (file, type, at, eventId) => {
    const parsed = postmark.parse(readFileSync(new URL(`./fixtures/postmark/${file}`, import.meta.url)));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.events).toHaveLength(1);
    const raw = parsed.events[0]!;
    const event = postmark.normalize(raw, receivedAt);
    expect(event.type).toBe(type);
    expect(event.eventAt.toISOString()).toBe(at);
    expect(event.providerMessageId).toBe(messageId);
    expect(event.recipient).toBe("john@example.com");
    expect(event.providerEventId).toBe(eventId);
    expect(event.dedupeKey).toEqual(eventId ?? expect.stringMatching(/^h:[0-9a-f]{64}$/));
    expect(event.payload).toBe(raw);
    expect(event.machineOpen).toBeNull();
    expect(event.groupId).toBeNull();
  });

  it("keeps what a bounce, a click and an open say", () => {
    const hard = postmark.normalize(fixture("bounce-hard.json"), receivedAt);
    expect(hard.bounceClassification).toBe("HardBounce");
    expect(hard.reason).toMatch(/^smtp;550 5\.1\.1/);
    const click = postmark.normalize(fixture("click.json"), receivedAt);
    expect(click.url).toBe("https://example.com/welcome");
    expect(click.ip).toBe("198.51.100.4");
    expect(click.userAgent).toMatch(/^Mozilla/);
    const open = postmark.normalize(fixture("open.json"), receivedAt);
    expect(open.ip).toBe("192.0.2.17");
    expect(open.url).toBeNull();
    expect(postmark.normalize(fixture("subscription-change.json"), receivedAt).reason).toBe(
      "ManualSuppression",
    );
  });

  it("maps every bounce TypeCode onto an email type, by code, else by its Type name", () => {
    const email = new Set<string>([...emailEventTypes, "unknown"]);
    for (const [code, { name, type }] of Object.entries(bounceTypes)) {
      expect(email.has(type), name).toBe(true);
      const byCode = { ...fixture("bounce-hard.json"), TypeCode: Number(code), Type: "whatever" };
      expect(postmark.normalize(byCode, receivedAt).type, name).toBe(type);
      const byName = { ...fixture("bounce-hard.json"), TypeCode: undefined, Type: name };
      expect(postmark.normalize(byName, receivedAt).type, name).toBe(type);
    }
    expect(bounceTypes[1]!.type).toBe("bounce");
    expect(bounceTypes[100000]!.type).toBe("bounce");
    expect(bounceTypes[100002]!.type).toBe("bounce");
    expect(bounceTypes[4096]!.type).toBe("deferred");
    expect(bounceTypes[256]!.type).toBe("deferred");
    expect(bounceTypes[100006]!.type).toBe("blocked");
    expect(bounceTypes[100001]!.type).toBe("spamreport");
    const unknownCode = { ...fixture("bounce-hard.json"), TypeCode: 77, Type: "NewKind" };
    expect(postmark.normalize(unknownCode, receivedAt).type).toBe("unknown");
  });

  it("suppresses for the reason a subscription change gives", () => {
    const change = fixture("subscription-change.json");
    const typeOf = (patch: object) => postmark.normalize({ ...change, ...patch }, receivedAt).type;
    expect(typeOf({ SuppressionReason: "HardBounce" })).toBe("bounce");
    expect(typeOf({ SuppressionReason: "SpamComplaint" })).toBe("spamreport");
    expect(typeOf({ SuppressionReason: "ManualSuppression" })).toBe("unsubscribe");
    expect(typeOf({ SuppressionReason: null })).toBe("unsubscribe");
    expect(typeOf({ SuppressSending: false })).toBe("group_resubscribe");
    expect(typeOf({ SuppressSending: "yes" })).toBe("unknown");
  });

  it("keeps a record of a kind it does not know as unknown, with its payload", () => {
    const raw = { RecordType: "Inbound", MessageID: "x-1", From: "a@example.com" };
    const event = postmark.normalize(raw, receivedAt);
    expect(event.type).toBe("unknown");
    expect(canonicalEventTypes).toContain(event.type);
    expect(event.payload).toBe(raw);
    expect(event.eventAt).toEqual(receivedAt);
    expect(postmark.normalize({}, receivedAt).type).toBe("unknown");
  });

  it("keys an event without an ID by its natural fields: the same event, the same key", () => {
    const open = fixture("open.json");
    const key = postmark.normalize(open, receivedAt).dedupeKey;
    expect(postmark.normalize({ ...open, ReadSeconds: 9 }, new Date()).dedupeKey).toBe(key);
    expect(
      postmark.normalize({ ...open, ReceivedAt: "2026-11-20T18:00:00Z" }, receivedAt).dedupeKey,
    ).not.toBe(key);
    const click = fixture("click.json");
    expect(
      postmark.normalize({ ...click, OriginalLink: "https://example.com/other" }, receivedAt).dedupeKey,
    ).not.toBe(postmark.normalize(click, receivedAt).dedupeKey);
    // An ID past 2^53 does not survive JSON.parse exactly: not trusted as a key.
    const big = JSON.parse(
      readFileSync(new URL("./fixtures/postmark/bounce-hard.json", import.meta.url), "utf8").replace(
        "692560172",
        "4323372036854775807",
      ),
    );
    expect(postmark.normalize(big, receivedAt)).toMatchObject({
      providerEventId: null,
      dedupeKey: expect.stringMatching(/^h:/),
    });
  });

  it("falls back to the receipt for a missing or implausible time, and reads herald_message_id from Metadata", () => {
    const delivery = fixture("delivery.json");
    for (const DeliveredAt of [undefined, "soon", "1999-01-01T00:00:00Z", "2030-01-01T00:00:00Z"])
      expect(postmark.eventTime({ ...delivery, DeliveredAt }, receivedAt)).toEqual(receivedAt);
    const id = "0191D5A4-3B2C-7D4E-8F60-123456789ABC";
    expect(
      postmark.normalize({ ...delivery, Metadata: { herald_message_id: id } }, receivedAt).heraldMessageId,
    ).toBe(id.toLowerCase());
    expect(
      postmark.normalize({ ...delivery, Metadata: { herald_message_id: "no" } }, receivedAt).heraldMessageId,
    ).toBeNull();
  });

  it("refuses a body that is not one JSON object", () => {
    for (const body of ["[]", "[{}]", "1", "null", '"x"']) {
      const parsed = postmark.parse(Buffer.from(body));
      expect(parsed.ok, body).toBe(false);
    }
    expect(postmark.parse(Buffer.from('{"RecordType":"Delivery","Details":"\\u0000"}')).ok).toBe(false);
    const bom = postmark.parse(Buffer.from(`\ufeff${JSON.stringify(fixture("delivery.json"))}`));
    expect(bom.ok).toBe(true);
  });
});

describe("Postmark's Basic auth", () => {
  const settings = { username: "herald", password: "s3cret:with:colons" };
  const request = (authorization?: string): IncomingRequest => ({
    headers: authorization === undefined ? {} : { authorization },
    body: Buffer.from(JSON.stringify(fixture("delivery.json"))),
    remoteIp: undefined,
    publicUrl: "https://herald.example.com/api/v1/webhooks/postmark/x",
  });
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
  const refusal = async (authorization?: string) =>
    (await postmark.authenticate(request(authorization), settings, authContext()))?.code;

  it("accepts the source's credentials (the scheme in any case, the password holding colons)", async () => {
    expect(await refusal(basic("herald", "s3cret:with:colons"))).toBeUndefined();
    expect(await refusal(basic("herald", "s3cret:with:colons").replace("Basic", "basic"))).toBeUndefined();
  });

  it("refuses a wrong username, a wrong password, none, or another scheme, the same way", async () => {
    for (const authorization of [
      basic("herald", "wrong"),
      basic("someone", "s3cret:with:colons"),
      basic("", ""),
      basic("herald", "s3cret:with:colon"),
      "Bearer s3cret",
      "Basic",
      "Basic !!!",
      `Basic ${Buffer.from("no-colon").toString("base64")}`,
      undefined,
    ])
      expect(await refusal(authorization), String(authorization)).toBe("invalid_signature");
  });

  it("compares both fields whatever the first gives", async () => {
    compared.calls = 0;
    await refusal(basic("someone", "wrong"));
    expect(compared.calls).toBe(2);
    compared.calls = 0;
    await refusal(basic("herald", "wrong"));
    expect(compared.calls).toBe(2);
  });

  it("lets an unverified source through, and never keeps the credentials", async () => {
    expect(await postmark.authenticate(request(), null, authContext())).toBeUndefined();
    expect(postmark.keptHeaders).not.toContain("authorization");
  });

  it("reads Basic credentials, and takes settings a Basic header can carry", () => {
    expect(basicCredentials(basic("u", "p:q"))).toEqual({ username: "u", password: "p:q" });
    expect(basicCredentials("Digest x")).toBeUndefined();
    expect(postmark.validateVerification({ username: "u", password: "p" })).toBeUndefined();
    expect(postmark.validateVerification({ username: "u:v", password: "p" })?.errors).toEqual([
      { field: "username", message: "holds a colon" },
    ]);
    expect(postmark.validateVerification({ username: "u" })?.errors).toEqual([
      { field: "password", message: "is required" },
    ]);
  });
});
