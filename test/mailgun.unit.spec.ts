import { createHmac } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { HeraldError } from "../src/errors.js";
import {
  canonicalType,
  expectedSignature,
  mailgun,
  normalizeEvent,
  replayRecordMarginMs,
  timestampToleranceMs,
} from "../src/providers/mailgun.js";
import { authContext } from "./support/authContext.js";
import { mailgunEvent, mailgunSigningKey, signedBody } from "./support/mailgun.js";

const receivedAt = new Date("2026-12-05T10:00:00Z");
const settings = { signing_key: mailgunSigningKey };
const request = (body: string | Buffer) => ({
  headers: { "content-type": "application/json" },
  body: Buffer.from(body),
  remoteIp: "198.51.100.7",
  publicUrl: "https://herald.example.com/api/v1/webhooks/mailgun/x",
});

describe("Mailgun's events", () => {
  const messageId = "20261205093000.1.A1B2C3D4E5F60718@mg.example.com";
  // Each documented event type, as test/fixtures/mailgun/ holds it, and what it becomes.
  const table: [fixture: string, type: string, fields: Record<string, unknown>][] = [
    ["accepted", "processed", { recipient: "alice@example.com", reason: null }],
    [
      "rejected",
      "dropped",
      { recipient: "alice@example.com", reason: "Sandbox subdomains are for test purposes only" },
    ],
    ["delivered", "delivered", { recipient: "alice@example.com", reason: null, bounceClassification: null }],
    [
      "failed-permanent",
      "bounce",
      {
        reason: "550 5.1.1 The email account that you tried to reach does not exist.",
        bounceClassification: "permanent/bounce",
      },
    ],
    [
      "failed-temporary",
      "deferred",
      {
        reason: "452 4.2.2 The email account that you tried to reach is over quota.",
        bounceClassification: "temporary/generic",
      },
    ],
    [
      "failed-suppress-bounce",
      "dropped",
      {
        reason: "605 Not delivering to previously bounced address",
        bounceClassification: "permanent/suppress-bounce",
      },
    ],
    ["failed-espblock", "blocked", { bounceClassification: "permanent/espblock" }],
    [
      "opened",
      "open",
      {
        ip: "203.0.113.50",
        userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Thunderbird/128.0",
        url: null,
      },
    ],
    ["clicked", "click", { ip: "203.0.113.50", url: "https://shop.example.com/orders/A-1001" }],
    ["unsubscribed", "unsubscribe", { ip: "203.0.113.50", recipient: "alice@example.com" }],
    ["complained", "spamreport", { recipient: "alice@example.com" }],
    [
      "stored",
      "unknown",
      { recipient: "support@mg.example.com", providerMessageId: "CAF=abc123@mail.example.org" },
    ],
  ];

  it.each(table)("%s becomes %s", (fixture, type, fields) => {
    const raw = mailgunEvent(fixture);
    const event = normalizeEvent(raw, receivedAt);
    expect(event.type).toBe(type);
    expect(event.payload).toBe(raw);
    expect(event.providerEventId).toBe(raw.id);
    expect(event.eventAt.getTime()).toBe(Math.round((raw.timestamp as number) * 1000));
    if (fixture !== "stored") {
      expect(event.providerMessageId).toBe(messageId);
      expect(event.heraldMessageId).toBe(
        fixture === "rejected" ? null : "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b",
      );
    }
    expect(event).toMatchObject(fields);
  });

  it("covers every fixture", () => {
    const files = readdirSync(new URL("./fixtures/mailgun/", import.meta.url)).map((f) =>
      f.replace(/\.json$/, ""),
    );
    expect(table.map(([f]) => f).sort()).toEqual(files.sort());
  });

  it("reads a failure by its severity, then its reason; anything unknown is kept as unknown", () => {
    const failed = (severity: string | undefined, reason: string | undefined) =>
      canonicalType({ event: "failed", severity, reason });
    expect(failed("temporary", "generic")).toBe("deferred");
    expect(failed("temporary", "bounce")).toBe("deferred");
    expect(failed("permanent", "bounce")).toBe("bounce");
    expect(failed("permanent", "generic")).toBe("bounce");
    expect(failed("permanent", undefined)).toBe("bounce");
    expect(failed(undefined, undefined)).toBe("bounce");
    for (const r of ["suppress-bounce", "suppress-unsubscribe", "suppress-complaint", "old"])
      expect(failed("permanent", r), r).toBe("dropped");
    expect(failed("permanent", "espblock")).toBe("blocked");
    // Inherited names are not reasons.
    expect(failed("permanent", "constructor")).toBe("bounce");
    for (const name of ["stored", "list_member_uploaded", "Delivered", "toString", "", 7, undefined])
      expect(canonicalType({ event: name }), String(name)).toBe("unknown");
  });

  it("keys an event by its id and its day: a retry meets it, the id on another day is another event", () => {
    const raw = mailgunEvent("delivered");
    const key = normalizeEvent(raw, receivedAt).dedupeKey;
    expect(key).toBe("W3X5kD0aQp2Nb8r4TcZ1gA@2025-12-05");
    // A retry: the same event again, received later.
    expect(normalizeEvent(structuredClone(raw), new Date()).dedupeKey).toBe(key);
    // Mailgun's id is unique only within a day.
    expect(
      normalizeEvent({ ...raw, timestamp: (raw.timestamp as number) + 86_400 }, receivedAt).dedupeKey,
    ).not.toBe(key);
    // No id: a hash of the natural fields, the same each time.
    const { id: _id, ...anonymous } = raw;
    const hashed = normalizeEvent(anonymous, receivedAt).dedupeKey;
    expect(hashed).toMatch(/^h:[0-9a-f]{64}$/);
    expect(normalizeEvent({ ...anonymous }, new Date()).dedupeKey).toBe(hashed);
    // An id too long to index is keyed by its hash.
    expect(normalizeEvent({ ...raw, id: "x".repeat(3000) }, receivedAt).dedupeKey).toMatch(
      /^k:[0-9a-f]{64}$/,
    );
  });

  it("strips the angle brackets of a message id, as Mailgun's send API returns it", () => {
    const raw = mailgunEvent("delivered");
    const bracketed = { ...raw, message: { headers: { "message-id": " <abc.def@mg.example.com> " } } };
    const event = normalizeEvent(bracketed, receivedAt);
    expect(event.providerMessageId).toBe("abc.def@mg.example.com");
    expect(mailgun.linkCandidates(event.providerMessageId!)[0]).toBe("abc.def@mg.example.com");
    expect(
      normalizeEvent({ ...raw, message: { headers: { "message-id": "x".repeat(600) } } }, receivedAt)
        .providerMessageId,
    ).toBeNull();
    expect(normalizeEvent({ ...raw, message: "nope" }, receivedAt).providerMessageId).toBeNull();
  });

  it("takes a time from the event if plausible, else its receipt", () => {
    const raw = mailgunEvent("opened");
    expect(mailgun.eventTime(raw, receivedAt).toISOString()).toBe("2025-12-05T09:21:40.411Z");
    expect(mailgun.eventTime({ ...raw, timestamp: "1764926500" }, receivedAt).toISOString()).toBe(
      "2025-12-05T09:21:40.000Z",
    );
    for (const timestamp of [undefined, "soon", 12, 9e12, Number.NaN])
      expect(mailgun.eventTime({ ...raw, timestamp }, receivedAt)).toBe(receivedAt);
  });

  it("reads the recipient of a rejected event without one from a To header holding one address", () => {
    const raw = { event: "rejected", message: { headers: { to: "Bob Example <Bob@Example.com>" } } };
    expect(normalizeEvent(raw, receivedAt).recipient).toBe("bob@example.com");
    const two = { event: "rejected", message: { headers: { to: "a@example.com, b@example.com" } } };
    expect(normalizeEvent(two, receivedAt).recipient).toBeNull();
  });
});

describe("Mailgun's request body", () => {
  it("is one JSON object whose event-data is the event", () => {
    const body = readFileSync(new URL("./fixtures/mailgun/delivered.json", import.meta.url));
    const parsed = mailgun.parse(body);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.events).toEqual([mailgunEvent("delivered")]);
  });

  it("is refused, saying where, when it is not", () => {
    const cases: [string, string][] = [
      ["[]", "/body"],
      ['"x"', "/body"],
      ["{}", "/body/event-data"],
      ['{"event-data": []}', "/body/event-data"],
      ['{"event-data": {"event": "delivered", "x": "\\u0000"}}', "/body"],
    ];
    for (const [body, path] of cases) {
      const parsed = mailgun.parse(Buffer.from(body));
      expect(parsed.ok, body).toBe(false);
      if (!parsed.ok) expect(parsed.path, body).toBe(path);
    }
    const deep = `{"event-data": ${'{"a":'.repeat(100)}1${"}".repeat(100)}}`;
    const parsed = mailgun.parse(Buffer.from(deep));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.path).toMatch(/^\/body\/event-data\/a\/a/);
  });
});

describe("Mailgun's signature", () => {
  const now = new Date("2026-12-05T10:00:00Z");
  const at = Math.floor(now.getTime() / 1000);
  const event = mailgunEvent("delivered");
  const check = (body: string, context = authContext(() => now), withSettings = settings) =>
    mailgun.authenticate(request(body), withSettings, context);

  it("is the hex HMAC-SHA256 of timestamp and token, as computed independently", () => {
    const token = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123";
    const independent = createHmac("sha256", mailgunSigningKey).update(`1770920772${token}`).digest("hex");
    expect(expectedSignature(mailgunSigningKey, "1770920772", token)).toBe(independent);
    expect(independent).toMatch(/^[0-9a-f]{64}$/);
  });

  it("lets a signed request through, once", async () => {
    const context = authContext(() => now);
    const { body, token } = signedBody(event, { timestamp: at - 30 });
    expect(await check(body, context)).toBeUndefined();
    // Its token is recorded until the timestamp leaves the tolerance (and a margin for clocks that differ).
    expect(context.used.get(token)?.getTime()).toBe(
      (at - 30) * 1000 + timestampToleranceMs + replayRecordMarginMs,
    );
    const again = await check(body, context);
    expect(again).toBeInstanceOf(HeraldError);
    expect(again?.code).toBe("invalid_signature");
    expect(again?.message).toMatch(/used before/);
    // The same event signed again (Mailgun's retry: a new token) is let through.
    expect(await check(signedBody(event, { timestamp: at }).body, context)).toBeUndefined();
  });

  it("takes a numeric timestamp, an upper-case signature and a subaccount's parent signature", async () => {
    const token = "a".repeat(50);
    const hmac = (key: string) => createHmac("sha256", key).update(`${at}${token}`).digest("hex");
    const numeric = JSON.stringify({
      signature: { timestamp: at, token, signature: hmac(mailgunSigningKey) },
      "event-data": event,
    });
    expect(await check(numeric)).toBeUndefined();
    const upper = signedBody(event, { timestamp: at });
    const upperBody = upper.body.replace(
      /"signature":"([0-9a-f]{64})"/,
      (_m, s: string) => `"signature":"${s.toUpperCase()}"`,
    );
    expect(upperBody).not.toBe(upper.body);
    expect(await check(upperBody)).toBeUndefined();
    const sub = JSON.stringify({
      signature: {
        timestamp: String(at),
        token,
        signature: hmac("subaccount-key"),
        "parent-signature": hmac(mailgunSigningKey),
      },
      "event-data": event,
    });
    expect(await check(sub)).toBeUndefined();
  });

  it("refuses a wrong signature, a wrong key, and a missing or malformed block, recording no token", async () => {
    const context = authContext(() => now);
    const bodies = [
      signedBody(event, { timestamp: at, signature: "0".repeat(64) }).body,
      signedBody(event, { timestamp: at, key: "key-someone-else" }).body,
      // The signature of another token.
      signedBody(event, {
        timestamp: at,
        signature: expectedSignature(mailgunSigningKey, String(at), "other"),
      }).body,
      JSON.stringify({ "event-data": event }),
      JSON.stringify({
        signature: { timestamp: "yesterday", token: "t", signature: "s" },
        "event-data": event,
      }),
      JSON.stringify({
        signature: { timestamp: String(at), token: "", signature: "s" },
        "event-data": event,
      }),
      JSON.stringify({
        signature: { timestamp: String(at), token: "t".repeat(201), signature: "s" },
        "event-data": event,
      }),
      JSON.stringify({ signature: { timestamp: String(at), token: "t" }, "event-data": event }),
      "not json",
      "[]",
    ];
    for (const body of bodies) {
      const refused = await check(body, context);
      expect(refused, body).toBeInstanceOf(HeraldError);
      expect(refused?.code).toBe("invalid_signature");
      expect(refused?.status).toBe(401);
    }
    expect(context.used.size).toBe(0);
  });

  it("refuses a timestamp older or further ahead than the tolerance, recording no token", async () => {
    const context = authContext(() => now);
    const limit = timestampToleranceMs / 1000;
    const stale = await check(signedBody(event, { timestamp: at - limit - 1 }).body, context);
    expect(stale?.code).toBe("invalid_signature");
    expect(stale?.message).toMatch(/old/);
    const future = await check(signedBody(event, { timestamp: at + limit + 1 }).body, context);
    expect(future?.code).toBe("invalid_signature");
    expect(future?.message).toMatch(/in the future/);
    expect(context.used.size).toBe(0);
    expect(await check(signedBody(event, { timestamp: at - limit }).body, context)).toBeUndefined();
    expect(await check(signedBody(event, { timestamp: at + limit }).body, context)).toBeUndefined();
  });

  it("lets exactly one of concurrent copies of a signed request through", async () => {
    const context = authContext(() => now);
    const { body } = signedBody(event, { timestamp: at });
    const results = await Promise.all(Array.from({ length: 8 }, () => check(body, context)));
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
  });

  it("lets an unverified source's request through unchecked", async () => {
    expect(await mailgun.authenticate(request("{}"), null, authContext())).toBeUndefined();
    expect(await mailgun.authenticate(request("{}"), {}, authContext())).toBeUndefined();
  });
});
