import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  getExpectedTwilioSignature,
  validateRequest,
  validateRequestWithBody,
} from "twilio/lib/webhooks/webhooks.js";
import { describe, expect, it } from "vitest";
import { publicUrlOf } from "../src/api/publicUrl.js";
import { loadConfig } from "../src/config.js";
import {
  addressProblem,
  isPhoneRegion,
  normalizeAddress,
  normalizePhone,
  type PhoneRegion,
  setDefaultPhoneRegion,
} from "../src/domain/address.js";
import {
  replacesStatus,
  type StatusPoint,
  smsEventTypes,
  statusOfEvent,
  statusRank,
} from "../src/domain/messageStatus.js";
import { smsKeyword, smsKeywords } from "../src/domain/optOut.js";
import type { MessageStatus } from "../src/domain/vocabularies.js";
import { HeraldError } from "../src/errors.js";
import { emptyTwiml, twilio, twilioInbound, twilioKind } from "../src/providers/twilio.js";
import { formParams } from "../src/providers/twilioForm.js";
import { expectedSignature, signatureHash, verifySignature } from "../src/providers/twilioSignature.js";
import type { IncomingRequest } from "../src/providers/types.js";
import { authContext } from "./support/authContext.js";

const authToken = "9f2d7c31b8e04a6f5c1d2e3f4a5b6c7d";
const settings = { auth_token: authToken };
const receivedAt = new Date("2026-11-22T12:00:00Z");
const hookUrl = "https://sms.example.com/api/v1/webhooks/twilio/0193a4f2-7c1e-7d2a-9b3c-4d5e6f708192";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/twilio/${name}`, import.meta.url));
/** A form body's parameters as an Express-style body parser gives them to twilio-node. */
const paramsOf = (body: Buffer | string): Record<string, string> =>
  Object.fromEntries(new URLSearchParams(body.toString()));
const form = (params: Record<string, string>) => Buffer.from(new URLSearchParams(params).toString());

const request = (
  body: Buffer,
  publicUrl: string,
  headers: IncomingRequest["headers"] = {},
): IncomingRequest => ({ headers, body, remoteIp: "203.0.113.7", publicUrl });
/** A request as Twilio sends it: signed by the official library over `signedUrl`. */
const signed = (body: Buffer, signedUrl: string, publicUrl = signedUrl) =>
  request(body, publicUrl, {
    "x-twilio-signature": getExpectedTwilioSignature(authToken, signedUrl, paramsOf(body)),
  });

const expectRefused = (error: HeraldError | undefined) => {
  expect(error).toBeInstanceOf(HeraldError);
  expect(error?.code).toBe("invalid_signature");
  expect(error?.status).toBe(401);
};

/** A deterministic generator (mulberry32), so that a failure reproduces. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("Twilio signatures", () => {
  const inbound = fixture("inbound-sms.form");

  it("accept what Twilio's own library signs, and twilio-node accepts what Herald computes", async () => {
    for (const file of ["inbound-sms.form", "inbound-mms.form", "status-undelivered.form"]) {
      const body = fixture(file);
      const req = signed(body, hookUrl);
      expect(await twilio.authenticate(req, settings, authContext()), file).toBeUndefined();
      const ours = expectedSignature(authToken, hookUrl, formParams(body)!);
      expect(ours).toBe(req.headers["x-twilio-signature"]);
      expect(validateRequest(authToken, ours, hookUrl, paramsOf(body))).toBe(true);
    }
  });

  it("refuse a missing, wrong or stale signature with 401, as twilio-node does", async () => {
    const good = getExpectedTwilioSignature(authToken, hookUrl, paramsOf(inbound));
    expectRefused(await twilio.authenticate(request(inbound, hookUrl), settings, authContext()));
    expectRefused(
      await twilio.authenticate(
        request(inbound, hookUrl, { "x-twilio-signature": "" }),
        settings,
        authContext(),
      ),
    );
    const wrongs = {
      "another token": getExpectedTwilioSignature("0".repeat(32), hookUrl, paramsOf(inbound)),
      "another URL": getExpectedTwilioSignature(authToken, `${hookUrl}x`, paramsOf(inbound)),
      truncated: good.slice(0, -2),
      "not base64": "not a signature!",
    };
    for (const [what, signature] of Object.entries(wrongs)) {
      expectRefused(
        await twilio.authenticate(
          request(inbound, hookUrl, { "x-twilio-signature": signature }),
          settings,
          authContext(),
        ),
      );
      expect(validateRequest(authToken, signature, hookUrl, paramsOf(inbound)), what).toBe(false);
    }
    // A parameter changed after signing (the body says "Body=Yes", the signature was for the original).
    const tampered = Buffer.from(inbound.toString().replace("Thursday", "Friday"));
    expectRefused(
      await twilio.authenticate(
        request(tampered, hookUrl, { "x-twilio-signature": good }),
        settings,
        authContext(),
      ),
    );
    expect(validateRequest(authToken, good, hookUrl, paramsOf(tampered))).toBe(false);
    // A parameter added after signing.
    const added = Buffer.concat([inbound, Buffer.from("&Extra=1")]);
    expectRefused(
      await twilio.authenticate(
        request(added, hookUrl, { "x-twilio-signature": good }),
        settings,
        authContext(),
      ),
    );
  });

  it("let any request through to a source without an auth token (an unverified source)", async () => {
    expect(await twilio.authenticate(request(inbound, hookUrl), null, authContext())).toBeUndefined();
    expect(await twilio.authenticate(request(inbound, hookUrl), {}, authContext())).toBeUndefined();
  });

  it("match twilio-node with and without the default port in the URL", async () => {
    const pairs = [
      ["https://sms.example.com:443/hook?x=1", "https://sms.example.com/hook?x=1"],
      ["https://sms.example.com/hook?x=1", "https://sms.example.com:443/hook?x=1"],
      ["http://sms.example.com:80/hook", "http://sms.example.com/hook"],
      ["http://sms.example.com/hook", "http://sms.example.com:80/hook"],
    ];
    for (const [signedUrl, publicUrl] of pairs) {
      const req = signed(inbound, signedUrl!, publicUrl!);
      expect(
        await twilio.authenticate(req, settings, authContext()),
        `${signedUrl} as ${publicUrl}`,
      ).toBeUndefined();
      expect(
        validateRequest(
          authToken,
          req.headers["x-twilio-signature"] as string,
          publicUrl!,
          paramsOf(inbound),
        ),
      ).toBe(true);
    }
    // A port other than the scheme's default is part of the URL: it must match.
    const req = signed(inbound, "https://sms.example.com:8443/hook", "https://sms.example.com/hook");
    expectRefused(await twilio.authenticate(req, settings, authContext()));
    expect(
      validateRequest(
        authToken,
        req.headers["x-twilio-signature"] as string,
        "https://sms.example.com/hook",
        paramsOf(inbound),
      ),
    ).toBe(false);
  });

  it("behind a proxy, accept the URL Twilio called once Herald knows it, and only then", async () => {
    const path = "/api/v1/webhooks/twilio/0193a4f2-7c1e-7d2a-9b3c-4d5e6f708192?tenant=acme";
    const publicUrl = `https://sms.example.com${path}`;
    // What Herald sees: plain HTTP from the proxy, to its own host and port.
    const proxied = {
      protocol: "http" as const,
      host: "10.0.0.5:3000",
      url: path,
      headers: { "x-forwarded-proto": "https", "x-forwarded-host": "sms.example.com" },
    };
    const signature = getExpectedTwilioSignature(authToken, publicUrl, paramsOf(inbound));
    const headers = { "x-twilio-signature": signature };
    const asSeen = async (url: string) =>
      await twilio.authenticate(request(inbound, url, headers), settings, authContext());

    expect(publicUrlOf(proxied, { trustProxy: true })).toBe(publicUrl);
    expect(await asSeen(publicUrlOf(proxied, { trustProxy: true }))).toBeUndefined();
    expect(await asSeen(publicUrlOf(proxied, { publicUrl: "https://sms.example.com" }))).toBeUndefined();
    // Not told about the proxy, Herald checks the local URL, which Twilio did not sign: refused, as the
    // official validator refuses it.
    const local = publicUrlOf(proxied);
    expect(local).toBe(`http://10.0.0.5:3000${path}`);
    expectRefused(await asSeen(local));
    expect(validateRequest(authToken, signature, local, paramsOf(inbound))).toBe(false);
    expect(validateRequest(authToken, signature, publicUrl, paramsOf(inbound))).toBe(true);
  });

  it("check a JSON body by the bodySHA256 of its URL, as validateRequestWithBody does", async () => {
    const body = JSON.stringify({
      MessageSid: "SM1f2e3d4c5b6a79880716253443526170",
      MessageStatus: "delivered",
    });
    const hash = createHash("sha256").update(body).digest("hex");
    const url = `${hookUrl}?bodySHA256=${hash}`;
    const signature = getExpectedTwilioSignature(authToken, url, {});
    const headers = { "x-twilio-signature": signature, "content-type": "application/json" };
    expect(validateRequestWithBody(authToken, signature, url, body)).toBe(true);
    expect(
      await twilio.authenticate(request(Buffer.from(body), url, headers), settings, authContext()),
    ).toBeUndefined();

    // The body changed, or the hash in the URL changed with it (then the signature no longer matches).
    const other = body.replace("delivered", "read");
    expect(validateRequestWithBody(authToken, signature, url, other)).toBe(false);
    expectRefused(
      await twilio.authenticate(request(Buffer.from(other), url, headers), settings, authContext()),
    );
    const rehashed = `${hookUrl}?bodySHA256=${createHash("sha256").update(other).digest("hex")}`;
    expect(validateRequestWithBody(authToken, signature, rehashed, other)).toBe(false);
    expectRefused(
      await twilio.authenticate(request(Buffer.from(other), rehashed, headers), settings, authContext()),
    );
  });

  it("use HMAC-SHA256 when the signature settings header names it, and refuse an unknown algorithm", async () => {
    expect(signatureHash(undefined)).toBe("sha1");
    expect(signatureHash("key=webhooks_sharedkey_1")).toBe("sha1");
    expect(signatureHash("key=k1, algorithm=HMAC_SHA256")).toBe("sha256");
    expect(signatureHash("key=k1,algorithm=HMAC_MD5")).toBeUndefined();
    const signature = getExpectedTwilioSignature(authToken, hookUrl, paramsOf(inbound), "HMAC_SHA256");
    const settingsHeader = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256";
    expect(validateRequest(authToken, signature, hookUrl, paramsOf(inbound), "HMAC_SHA256")).toBe(true);
    expect(
      await twilio.authenticate(
        request(inbound, hookUrl, {
          "x-twilio-signature": signature,
          "x-twilio-webhooks-signature-settings": settingsHeader,
        }),
        settings,
        authContext(),
      ),
    ).toBeUndefined();
    // The same signature without the header is checked as SHA-1: refused.
    expectRefused(
      await twilio.authenticate(
        request(inbound, hookUrl, { "x-twilio-signature": signature }),
        settings,
        authContext(),
      ),
    );
    expectRefused(
      await twilio.authenticate(
        request(inbound, hookUrl, {
          "x-twilio-signature": signature,
          "x-twilio-webhooks-signature-settings": "algorithm=HMAC_MD5",
        }),
        settings,
        authContext(),
      ),
    );
  });

  it("agree with twilio-node on generated URLs and parameters, signed over the URL as received or a variant", async () => {
    const next = random(16);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const alphabet = ["a", "Z", "0", " ", "+", "%", "&", "=", "'", "~", "é", "–", "😀", "/", "?", "*", "\n"];
    const text = (max: number) =>
      Array.from({ length: Math.floor(next() * max) }, () => pick(alphabet)).join("");
    const queries = [
      "",
      "?a=1",
      "?tenant=acme&x=it's",
      "?q=a%20b",
      "?q=a+b&r=%27",
      "?empty=",
      '?q="a"&b=<c>',
      "?q=%7e",
    ];
    const hosts = [
      "https://sms.example.com",
      "https://sms.example.com:443",
      "http://sms.example.com:80",
      "https://sms.example.com:8443",
    ];
    // What Twilio may have signed, against the URL Herald sees: the same, the port added or dropped, the URL
    // as WHATWG normalizes it, another port.
    const variants = [
      (u: string) => u,
      (u: string) =>
        u.replace(
          /^(https?:\/\/[^/:]+)\//,
          (_, h: string) => `${h}${h.startsWith("https") ? ":443" : ":80"}/`,
        ),
      (u: string) => u.replace(/:(443|80)\//, "/"),
      (u: string) => new URL(u).toString(),
      (u: string) => u.replace(/^(https?:\/\/[^/:]+)(:\d+)?\//, "$1:9999/"),
    ];
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const params: Record<string, string> = {};
      const count = Math.floor(next() * 6);
      for (let j = 0; j < count; j++) params[`${text(4)}K${j}`] = text(12);
      const body = form(params);
      const url = `${pick(hosts)}/hook/${i}${pick(queries)}`;
      const variant = Math.floor(next() * variants.length);
      const signedUrl = variants[variant]!(url);
      const good = getExpectedTwilioSignature(authToken, signedUrl, paramsOf(body));
      const signature = next() < 0.2 ? good.replace(/^./, (c) => (c === "A" ? "B" : "A")) : good;
      const official = validateRequest(authToken, signature, url, paramsOf(body));
      const ours = verifySignature(authToken, { url, body, signature });
      expect(ours, `${signedUrl} as ${url}: ${body}`).toBe(official);
      const outcome = `${variant}:${ours}`;
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    // Each variant was seen accepted and refused (a port of its own is never accepted).
    for (const variant of [0, 1, 2, 3]) {
      expect(outcomes.get(`${variant}:true`), `variant ${variant} accepted`).toBeGreaterThan(0);
      expect(outcomes.get(`${variant}:false`), `variant ${variant} refused`).toBeGreaterThan(0);
    }
    expect(outcomes.get("4:true")).toBeUndefined();
  });

  it("sign a name given several values as twilio-node does (each distinct value, sorted)", async () => {
    const body = Buffer.from("To=%2B14155550100&MediaUrl=b&MediaUrl=a&MediaUrl=b");
    const official = getExpectedTwilioSignature(authToken, hookUrl, {
      To: "+14155550100",
      MediaUrl: ["b", "a", "b"],
    });
    expect(verifySignature(authToken, { url: hookUrl, body, signature: official })).toBe(true);
  });
});

describe("Twilio bodies", () => {
  it("parse each form body into one raw event of its parameters", async () => {
    const parsed = twilio.parse(fixture("inbound-sms.form"));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.events).toHaveLength(1);
    expect(parsed.events[0]).toMatchObject({
      MessageSid: "SM5b6a4c1e2d3f40718293a4b5c6d7e8f9",
      Body: "Can we move my appointment to Thursday? Thanks – Ada",
      From: "+14155550123",
      To: "+14155550100",
      ToCity: "SAN FRANCISCO",
    });
    expect(parsed.text).toBe(fixture("inbound-sms.form").toString());
  });

  it("refuse what is not a form body naming a message, saying where", async () => {
    const cases: [string, string][] = [
      ["", "/body"],
      ["   ", "/body"],
      ['{"MessageSid":"SM1"}', "/body"],
      ["[]", "/body"],
      ["MessageSid", "/body"],
      ["=SM1&To=%2B1", "/body"],
      ["To=%2B14155550100&Body=hi", "/body/MessageSid"],
      ["MessageSid=", "/body/MessageSid"],
      ["MessageSid=SM1&MessageSid=SM2", "/body/MessageSid"],
      ["MessageSid=SM1&MessageStatus=sent&MessageStatus=delivered", "/body/MessageStatus"],
      ["MessageSid=SM1&Body=a%00b", "/body/Body"],
      ["MessageSid=SM1&a%2Fb%00=1", "/body/a~1b\u0000"],
    ];
    for (const [body, path] of cases) {
      const parsed = twilio.parse(Buffer.from(body));
      expect(parsed, body).toMatchObject({ ok: false, code: "validation_failed", path });
    }
    // A raw NUL byte is valid UTF-8, and still cannot be stored.
    const rawNul = twilio.parse(Buffer.from("MessageSid=SM1&Body=a\u0000b"));
    expect(rawNul).toMatchObject({ ok: false, code: "validation_failed", path: "/body/Body" });
    const notUtf8 = twilio.parse(Buffer.from([0x4d, 0x3d, 0xff]));
    expect(notUtf8).toMatchObject({ ok: false, code: "validation_failed", path: "/body" });
  });

  it("keep a parameter named __proto__ as a parameter", async () => {
    const parsed = twilio.parse(Buffer.from("MessageSid=SM1&__proto__=x&constructor=y"));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const event = parsed.events[0]!;
    expect(Object.getPrototypeOf(event)).toBe(Object.prototype);
    expect(Object.hasOwn(event, "__proto__")).toBe(true);
    expect(JSON.parse(JSON.stringify(event))).toEqual({
      MessageSid: "SM1",
      ["__proto__"]: "x",
      constructor: "y",
    });
  });
});

const rawOf = (name: string) => {
  const parsed = twilio.parse(fixture(name));
  if (!parsed.ok) throw new Error(`${name}: ${parsed.detail}`);
  return parsed.events[0]!;
};

describe("Twilio inbound messages and status callbacks", () => {
  it("tell an inbound message from a status callback", async () => {
    expect(twilioKind(rawOf("inbound-sms.form"))).toBe("inbound");
    expect(twilioKind(rawOf("inbound-mms.form"))).toBe("inbound");
    expect(twilioKind(rawOf("status-sent.form"))).toBe("status");
    expect(twilioKind(rawOf("status-undelivered.form"))).toBe("status");
    expect(twilioKind({ MessageSid: "SM1", From: "+14155550123", To: "+14155550100", Body: "hi" })).toBe(
      "inbound",
    );
    expect(twilioKind({ MessageSid: "SM1", SmsStatus: "sent", From: "+1", To: "+2" })).toBe("status");
    expect(twilioKind({ MessageSid: "SM1" })).toBe("unknown");
  });

  it("read an inbound SMS for the intake: its sid, addresses in E.164, body, and keyword", async () => {
    expect(twilioInbound(rawOf("inbound-sms.form"))).toEqual({
      providerMessageId: "SM5b6a4c1e2d3f40718293a4b5c6d7e8f9",
      accountSid: "AC3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c",
      messagingServiceSid: "MG9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
      from: "+14155550123",
      to: "+14155550100",
      body: "Can we move my appointment to Thursday? Thanks – Ada",
      numMedia: 0,
      numSegments: 1,
      media: [],
      keyword: undefined,
    });
    expect(twilioInbound(rawOf("inbound-stop.form"))?.keyword).toEqual({
      keyword: "STOP",
      action: "opt_out",
    });
    const mms = twilioInbound(rawOf("inbound-mms.form"));
    expect(mms?.body).toBe("");
    expect(mms?.media).toEqual([
      {
        url: expect.stringMatching(/^https:\/\/api\.twilio\.com\/.*\/Media\/ME/),
        contentType: "image/jpeg",
      },
    ]);
    expect(twilioInbound(rawOf("status-delivered.form"))).toBeUndefined();
    // Twilio's Advanced Opt-Out recognized a custom keyword of the account.
    const custom = {
      MessageSid: "SM2",
      From: "+14155550123",
      To: "+14155550100",
      Body: "Arret",
      OptOutType: "STOP",
    };
    expect(twilioInbound(custom)?.keyword).toEqual({ keyword: "ARRET", action: "opt_out" });
  });

  it("normalize a status callback: its status, sid, recipient and error; no time of its own", async () => {
    const event = twilio.normalize(rawOf("status-undelivered.form"), receivedAt);
    expect(event).toMatchObject({
      type: "undelivered",
      eventAt: receivedAt,
      providerEventId: null,
      providerMessageId: "SM1f2e3d4c5b6a79880716253443526170",
      heraldMessageId: null,
      recipient: "+14155550123",
      reason: "30003",
    });
    expect(statusOfEvent[event.type]).toBe("undelivered");
    expect(twilio.normalize(rawOf("status-sent.form"), receivedAt).type).toBe("sent");
    expect(statusOfEvent.sent).toBe("sent_to_carrier");
    expect(twilio.normalize({ MessageSid: "SM1", MessageStatus: "teleported" }, receivedAt).type).toBe(
      "unknown",
    );
    expect(twilio.linkCandidates("SM1f2e3d4c5b6a79880716253443526170")).toEqual([
      "SM1f2e3d4c5b6a79880716253443526170",
    ]);
  });

  it("key a callback by sid, status and error code: a repeat is the same event, whenever it arrives", async () => {
    const key = (raw: Record<string, unknown>, at = receivedAt) => twilio.normalize(raw, at).dedupeKey;
    const delivered = rawOf("status-delivered.form");
    expect(key(delivered, new Date("2026-11-22T12:05:00Z"))).toBe(key(delivered));
    expect(key({ ...delivered, ApiVersion: "2010-04-01", Extra: "added later" })).toBe(key(delivered));
    const undelivered = rawOf("status-undelivered.form");
    expect(key(undelivered)).not.toBe(key(delivered));
    expect(key({ ...undelivered, ErrorCode: "30005" })).not.toBe(key(undelivered));
    expect(key({ ...delivered, MessageSid: "SM00000000000000000000000000000000" })).not.toBe(key(delivered));
  });

  it("answer an inbound message with empty TwiML and a status callback with an empty 200", async () => {
    const received = { deliveryId: 7, events: 1 };
    expect(twilio.answer(received, [rawOf("inbound-sms.form")])).toEqual({
      status: 200,
      contentType: "text/xml",
      text: '<?xml version="1.0" encoding="UTF-8"?><Response/>',
    });
    expect(twilio.answer(received, [rawOf("status-delivered.form")])).toEqual({
      status: 200,
      contentType: "text/plain",
      text: "",
    });
    expect(twilio.answer(received)).toEqual({ status: 200, contentType: "text/xml", text: emptyTwiml });
  });
});

/** Every ordering of `items`. */
function* permutations<T>(items: readonly T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield [...items];
    return;
  }
  for (let i = 0; i < items.length; i++) {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const tail of permutations(rest)) yield [items[i]!, ...tail];
  }
}

describe("SMS status", () => {
  /** The status a registered message ends at after these callbacks, received in this order a second apart. */
  const finalStatus = (callbacks: Record<string, unknown>[]): MessageStatus => {
    let current: StatusPoint = { status: "sent", at: new Date("2026-11-22T11:59:00Z") };
    callbacks.forEach((raw, i) => {
      const event = twilio.normalize(raw, new Date(receivedAt.getTime() + i * 1000));
      const status = statusOfEvent[event.type];
      if (status && replacesStatus(current, { status, at: event.eventAt }))
        current = { status, at: event.eventAt };
    });
    return current.status;
  };
  const callback = (status: string, errorCode?: string) => ({
    MessageSid: "SM1f2e3d4c5b6a79880716253443526170",
    MessageStatus: status,
    To: "+14155550123",
    ...(errorCode ? { ErrorCode: errorCode } : {}),
  });

  it("moves forward in the order a message goes through", async () => {
    const order: MessageStatus[] = [
      "sent",
      "accepted",
      "scheduled",
      "queued",
      "sending",
      "sent_to_carrier",
      "partially_delivered",
      "delivered",
      "canceled",
      "failed",
      "undelivered",
      "read",
    ];
    for (let i = 1; i < order.length; i++)
      expect(statusRank[order[i]!], order[i]).toBeGreaterThan(statusRank[order[i - 1]!]);
    // Every SMS status that moves a message has a rank of its own: callbacks have no time to break a tie.
    const smsStatuses = smsEventTypes.map((t) => statusOfEvent[t]).filter((s) => s !== null);
    expect(new Set(smsStatuses.map((s) => statusRank[s])).size).toBe(smsStatuses.length);
    // The email order is unchanged.
    const email: MessageStatus[] = [
      "sent",
      "processed",
      "deferred",
      "delivered",
      "bounced",
      "opened",
      "clicked",
      "unsubscribed",
    ];
    for (let i = 1; i < email.length; i++)
      expect(statusRank[email[i]!]).toBeGreaterThan(statusRank[email[i - 1]!]);
  });

  it("ends at the same status whatever order the callbacks arrive in", async () => {
    const histories: [Record<string, unknown>[], MessageStatus][] = [
      [[callback("queued"), callback("sending"), callback("sent"), callback("delivered")], "delivered"],
      [
        [callback("queued"), callback("sending"), callback("sent"), callback("delivered"), callback("read")],
        "read",
      ],
      [
        [
          callback("accepted"),
          callback("queued"),
          callback("sending"),
          callback("sent"),
          callback("undelivered", "30003"),
        ],
        "undelivered",
      ],
      [[callback("accepted"), callback("scheduled"), callback("canceled")], "canceled"],
      [[callback("queued"), callback("sending"), callback("failed", "30007")], "failed"],
      [
        [callback("sent"), callback("delivered"), callback("undelivered", "30003"), callback("sent")],
        "undelivered",
      ],
      [
        [callback("sending"), callback("sent"), callback("receiving"), callback("teleported")],
        "sent_to_carrier",
      ],
      [smsEventTypes.map((t) => callback(t)), "read"],
    ];
    for (const [history, expected] of histories) {
      // Every ordering, or for the longest history (13! orderings) forwards, backwards and shuffles.
      const next = random(history.length);
      const orders =
        history.length <= 7
          ? [...permutations(history)]
          : [
              history,
              [...history].reverse(),
              ...Array.from({ length: 200 }, () => [...history].sort(() => next() - 0.5)),
            ];
      for (const order of orders)
        expect(finalStatus(order), order.map((c) => c.MessageStatus).join(" → ")).toBe(expected);
    }
  });
});

describe("carrier keywords", () => {
  it("are whole bodies, without regard to case or the whitespace around them", async () => {
    const table: [string, string | undefined, string | undefined][] = [
      ["STOP", "STOP", "opt_out"],
      ["stop", "STOP", "opt_out"],
      ["Stop", "STOP", "opt_out"],
      ["  sToP \n", "STOP", "opt_out"],
      ["\tSTOPALL", "STOPALL", "opt_out"],
      ["unsubscribe", "UNSUBSCRIBE", "opt_out"],
      ["Cancel", "CANCEL", "opt_out"],
      ["END", "END", "opt_out"],
      ["quit ", "QUIT", "opt_out"],
      ["\u00a0STOP\u00a0", "STOP", "opt_out"],
      ["START", "START", "opt_in"],
      ["yes", "YES", "opt_in"],
      ["Unstop", "UNSTOP", "opt_in"],
      ["HELP", "HELP", "help"],
      ["info", "INFO", "help"],
      // Not the keyword alone: messages, not keywords (Twilio's rule).
      ["stop it", undefined, undefined],
      ["STOP PLEASE", undefined, undefined],
      ["please stop", undefined, undefined],
      ["STOP!", undefined, undefined],
      ["stop.", undefined, undefined],
      ["'STOP'", undefined, undefined],
      ["S T O P", undefined, undefined],
      ["STOP ALL", undefined, undefined],
      ["STOPP", undefined, undefined],
      ["stopping", undefined, undefined],
      ["yes!", undefined, undefined],
      ["Yes, see you then", undefined, undefined],
      ["", undefined, undefined],
      ["   ", undefined, undefined],
      // Letters that upper-case into ASCII are not the ASCII keyword.
      ["ſtop", undefined, undefined],
      ["quıt", undefined, undefined],
      ["ＳＴＯＰ", undefined, undefined],
      ["toString", undefined, undefined],
      ["constructor", undefined, undefined],
    ];
    for (const [body, keyword, action] of table)
      expect(smsKeyword(body), JSON.stringify(body)).toEqual(keyword ? { keyword, action } : undefined);
  });

  it("are the carriers' set", async () => {
    expect(smsKeywords("opt_out")).toEqual(["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]);
    expect(smsKeywords("opt_in")).toEqual(["START", "YES", "UNSTOP"]);
    expect(smsKeywords("help")).toEqual(["HELP", "INFO"]);
  });
});

describe("address normalization", () => {
  it("reads phones in international format anywhere, and in national format with a default region", async () => {
    const table: [string, PhoneRegion | undefined, string][] = [
      ["+14155550100", undefined, "+14155550100"],
      ["+1 (415) 555-0100", undefined, "+14155550100"],
      ["+44 20 7946 0018", undefined, "+442079460018"],
      ["+44 20 7946 0018", "US", "+442079460018"],
      ["(415) 555-0100", "US", "+14155550100"],
      ["415.555.0100", "US", "+14155550100"],
      ["1 415 555 0100", "US", "+14155550100"],
      ["020 7946 0018", "GB", "+442079460018"],
      ["07700 900123", "GB", "+447700900123"],
      ["06 12 34 56 78", "FR", "+33612345678"],
      ["0151 23456789", "DE", "+4915123456789"],
      ["+33 6 12 34 56 78", "GB", "+33612345678"],
      // Without a region a national number cannot be read: it keeps its digits (and compares to itself).
      ["(415) 555-0100", undefined, "4155550100"],
      ["020 7946 0018", undefined, "02079460018"],
    ];
    for (const [address, region, expected] of table) {
      expect(normalizePhone(address, region), `${address} in ${region}`).toBe(expected);
      expect(normalizeAddress("sms", address, region)).toBe(expected);
    }
  });

  it("accepts a national number only with a region, and names a known region", async () => {
    expect(addressProblem("sms", "(415) 555-0100")).toMatch(/E\.164/);
    expect(addressProblem("sms", "(415) 555-0100", "US")).toBeNull();
    expect(addressProblem("sms", "12", "US")).toMatch(/national in US/);
    expect(addressProblem("sms", "+14155550100", "GB")).toBeNull();
    expect(isPhoneRegion("US")).toBe(true);
    expect(isPhoneRegion("GB")).toBe(true);
    expect(isPhoneRegion("XX")).toBe(false);
    expect(isPhoneRegion("us")).toBe(false);
  });

  it("reads national numbers in the installation's default region (HERALD_DEFAULT_PHONE_REGION) when set", async () => {
    const config = loadConfig({ HERALD_DEFAULT_PHONE_REGION: "gb" });
    expect(config.defaultPhoneRegion).toBe("GB");
    expect(() => loadConfig({ HERALD_DEFAULT_PHONE_REGION: "Narnia" })).toThrow(
      /HERALD_DEFAULT_PHONE_REGION=Narnia is not a region code/,
    );
    try {
      setDefaultPhoneRegion(config.defaultPhoneRegion);
      expect(normalizeAddress("sms", "020 7946 0018")).toBe("+442079460018");
      expect(addressProblem("sms", "020 7946 0018")).toBeNull();
      // A region given explicitly still wins; international numbers are read as they are.
      expect(normalizeAddress("sms", "(415) 555-0100", "US")).toBe("+14155550100");
      expect(normalizeAddress("sms", "+14155550100")).toBe("+14155550100");
    } finally {
      setDefaultPhoneRegion(undefined);
    }
    expect(normalizeAddress("sms", "020 7946 0018")).toBe("02079460018");
    expect(addressProblem("sms", "020 7946 0018")).toMatch(/E\.164/);
  });

  it("trims and lower-cases emails, whatever the region", async () => {
    const table: [string, string][] = [
      ["Ada@Example.COM", "ada@example.com"],
      ["  ada@example.com\n", "ada@example.com"],
      ["ADA.LOVELACE+news@EXAMPLE.org ", "ada.lovelace+news@example.org"],
    ];
    for (const [address, expected] of table) {
      expect(normalizeAddress("email", address)).toBe(expected);
      expect(normalizeAddress("email", address, "US")).toBe(expected);
    }
    expect(addressProblem("email", " Ada@Example.com ")).toBeNull();
    expect(addressProblem("email", "Ada <ada@example.com>")).not.toBeNull();
  });
});
