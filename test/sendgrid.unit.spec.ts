import { EventWebhook } from "@sendgrid/eventwebhook";
import { describe, expect, it } from "vitest";
import {
  linkCandidates,
  linkingId,
  linkPrefixLengths,
  maxProviderMessageIdLength,
  messageIdRoot,
} from "../src/domain/messageIds.js";
import { normalizeEvent, parseBatch, verifySignature } from "../src/providers/sendgrid.js";
import { sampleBatch, sendgridKeys } from "./support/sendgrid.js";

const received = new Date("2026-11-22T12:00:00Z");

describe("SendGrid signatures", () => {
  const keys = sendgridKeys();
  const body = Buffer.from(JSON.stringify(sampleBatch()));

  it("verify with node:crypto exactly as SendGrid's own library does", () => {
    const headers = keys.sign(body, "1763800000");
    const signature = headers["x-twilio-email-event-webhook-signature"];
    expect(verifySignature(keys.publicKeyBase64, "1763800000", body, signature)).toBe(true);
    expect(verifySignature(keys.publicKeyPem, "1763800000", body, signature)).toBe(true);
    const official = new EventWebhook();
    expect(
      official.verifySignature(
        official.convertPublicKeyToECDSA(keys.publicKeyBase64),
        body,
        signature,
        "1763800000",
      ),
    ).toBe(true);
  });

  it("verify a batch with \\r\\n between events, byte for byte", () => {
    const crlf = Buffer.from(
      `[\r\n${sampleBatch()
        .map((e) => JSON.stringify(e))
        .join(",\r\n")}\r\n]`,
    );
    const { "x-twilio-email-event-webhook-signature": signature } = keys.sign(crlf, "1763800001");
    expect(verifySignature(keys.publicKeyBase64, "1763800001", crlf, signature)).toBe(true);
    const official = new EventWebhook();
    expect(
      official.verifySignature(
        official.convertPublicKeyToECDSA(keys.publicKeyBase64),
        crlf.toString(),
        signature,
        "1763800001",
      ),
    ).toBe(true);
    // Re-serializing the same events breaks it, which is why Herald keeps the raw bytes.
    const reserialized = Buffer.from(JSON.stringify(JSON.parse(crlf.toString())));
    expect(verifySignature(keys.publicKeyBase64, "1763800001", reserialized, signature)).toBe(false);
  });

  it("refuse a wrong timestamp, a tampered body, another key, and garbage", () => {
    const { "x-twilio-email-event-webhook-signature": signature } = keys.sign(body, "1763800000");
    expect(verifySignature(keys.publicKeyBase64, "1763800001", body, signature)).toBe(false);
    expect(verifySignature(keys.publicKeyBase64, "1763800000", Buffer.from(`${body} `), signature)).toBe(
      false,
    );
    expect(verifySignature(sendgridKeys().publicKeyBase64, "1763800000", body, signature)).toBe(false);
    expect(verifySignature(keys.publicKeyBase64, "1763800000", body, "not base64 !!")).toBe(false);
    expect(verifySignature("not a key", "1763800000", body, signature)).toBe(false);
  });
});

describe("SendGrid parsing and normalization", () => {
  it("accepts only UTF-8 JSON arrays of objects", () => {
    expect(parseBatch(Buffer.from("[]"))).toEqual({ ok: true, events: [], text: "[]" });
    expect(parseBatch(Buffer.from("{"))).toMatchObject({ ok: false, code: "invalid_json" });
    expect(parseBatch(Buffer.from([0x5b, 0xff, 0x5d]))).toMatchObject({ ok: false, code: "invalid_json" });
    expect(parseBatch(Buffer.from('{"event":"open"}'))).toMatchObject({
      ok: false,
      code: "validation_failed",
    });
    expect(parseBatch(Buffer.from('[{"event":"open"}, 3]'))).toMatchObject({
      ok: false,
      code: "validation_failed",
      detail: "Event 1 is not a JSON object",
      path: "/body/1",
    });
  });

  it("refuses valid JSON that jsonb cannot hold, and only that", () => {
    const parse = (text: string) => parseBatch(Buffer.from(text));
    for (const text of [
      '[{"event":"open"},{"email":"a\\u0000b"}]',
      '[{"x\\uD800":1}]',
      '[{"x":"\\udc00"}]',
      '[{"x":"\\ud800\\u0041"}]',
      '[{"x":"\\\\\\u0000"}]', // an escaped backslash, then a real \u0000
      '[{"a":"\\u0000","a":1}]', // parsed, the repeated key would hide it
    ]) {
      expect(parse(text), text).toMatchObject({ ok: false, code: "validation_failed" });
    }
    expect(parse(`[{"x":${"[".repeat(64)}${"]".repeat(64)}}]`)).toMatchObject({
      ok: false,
      detail: "Event 0 nests deeper than 64 levels",
    });
    // An escaped surrogate pair, an escaped backslash before "u0000", and 63 levels are fine.
    expect(parse('[{"email":"\\ud83d\\ude00","note":"\\\\u0000"}]')).toMatchObject({ ok: true });
    expect(parse(`[{"x":${"[".repeat(63)}${"]".repeat(63)}}]`)).toMatchObject({ ok: true });
  });

  it("maps every event of the sample to its canonical type with the provider's time", () => {
    const events = sampleBatch().map((e) => normalizeEvent(e, received));
    expect(events.map((e) => e.type)).toEqual([
      "processed",
      "delivered",
      "open",
      "click",
      "processed",
      "deferred",
      "bounce",
      "spamreport",
      "unsubscribe",
      "group_unsubscribe",
      "dropped",
    ]);
    expect(events[0]!.eventAt.toISOString()).toBe(new Date(1763800000 * 1000).toISOString());
    expect(events[2]).toMatchObject({ machineOpen: false, ip: "203.0.113.7", recipient: "ada@example.com" });
    expect(events[3]!.url).toBe("https://example.com/getting-started?utm_source=welcome");
    expect(events[9]!.groupId).toBe(42);
    const groupOf = (asm_group_id: unknown) =>
      normalizeEvent({ event: "group_unsubscribe", asm_group_id }, received).groupId;
    expect([7, "7", 2147483647, "2147483647"].map(groupOf)).toEqual([7, 7, 2147483647, 2147483647]);
    expect([2147483648, "2147483648", 1e12, -1, 1.5, "x", null].map(groupOf)).toEqual(Array(7).fill(null));
  });

  it("tells blocked from hard bounces and keeps reasons and classifications", () => {
    const hard = normalizeEvent(
      {
        event: "bounce",
        type: "bounce",
        email: "A@X.io ",
        timestamp: 1763800000,
        reason: "550 5.1.1 no such user",
        status: "5.1.1",
        bounce_classification: "Invalid Address",
        sg_event_id: "b1",
      },
      received,
    );
    const blocked = normalizeEvent(
      {
        event: "bounce",
        type: "blocked",
        email: "a@x.io",
        timestamp: 1763800000,
        reason: "blocked by reputation",
        sg_event_id: "b2",
      },
      received,
    );
    expect(hard).toMatchObject({
      type: "bounce",
      recipient: "a@x.io",
      reason: "550 5.1.1 no such user",
      bounceClassification: "Invalid Address",
    });
    expect(blocked.type).toBe("blocked");
  });

  it("stores what it does not know as unknown and keeps strange events instead of failing", () => {
    expect(normalizeEvent({ event: "account_status_change", timestamp: 1763800000 }, received).type).toBe(
      "unknown",
    );
    const strange = normalizeEvent({ event: 42, timestamp: "yesterday", email: ["x"] }, received);
    expect(strange).toMatchObject({ type: "unknown", recipient: null });
    expect(strange.eventAt).toEqual(received);
    // A time more than a day after receipt is not believed (each month of events is a partition).
    const future = Math.floor(received.getTime() / 1000) + 2 * 86_400;
    expect(normalizeEvent({ event: "open", timestamp: future }, received).eventAt).toEqual(received);
    const soon = Math.floor(received.getTime() / 1000) + 3600;
    expect(normalizeEvent({ event: "open", timestamp: soon }, received).eventAt).toEqual(
      new Date(soon * 1000),
    );
  });

  it("keys each event by sg_event_id, else by a stable hash of its natural fields", () => {
    const withId = normalizeEvent({ event: "open", sg_event_id: "abc", timestamp: 1 }, received);
    expect(withId.dedupeKey).toBe("abc");
    const noId = { event: "unsubscribe", email: "d@x.io", timestamp: 1763800400, sg_message_id: "m.1" };
    const a = normalizeEvent(noId, received);
    const b = normalizeEvent({ ...noId }, new Date());
    expect(a.dedupeKey).toBe(b.dedupeKey);
    expect(a.dedupeKey).not.toBe(normalizeEvent({ ...noId, timestamp: 1763800401 }, received).dedupeKey);
  });

  it("reads the message id from sg_message_id, else from smtp-id, and the herald id from custom args", () => {
    const id = "01a20000-0000-7000-8000-000000000001";
    expect(
      normalizeEvent({ event: "bounce", "smtp-id": "<Abc123@geopod>", herald_message_id: id }, received),
    ).toMatchObject({
      providerMessageId: "Abc123",
      heraldMessageId: id,
    });
    expect(
      normalizeEvent({ event: "open", herald_message_id: "not-a-uuid" }, received).heraldMessageId,
    ).toBeNull();
  });
});

describe("SendGrid message id linking", () => {
  const legacy = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0";

  it("offers the whole id and every prefix ending before a dot, longest first", () => {
    expect(linkCandidates(legacy)).toEqual([
      legacy,
      "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88",
      "14c5d75ce93.dfd.64b469.filter0001.16648",
      "14c5d75ce93.dfd.64b469.filter0001",
      "14c5d75ce93.dfd.64b469",
      "14c5d75ce93.dfd",
      "14c5d75ce93",
    ]);
    expect(linkPrefixLengths("Lm3kB8pQR1sT5uVw7xYzAa.filter-1.0")).toEqual([33, 31, 22]);
    expect(linkCandidates("plain")).toEqual(["plain"]);
    // A leading dot makes no empty candidate; a doubled one makes both prefixes.
    expect(linkCandidates(".a")).toEqual([".a"]);
    expect(linkCandidates("a..b")).toEqual(["a..b", "a.", "a"]);
  });

  it("offers nothing longer than the messages API takes", () => {
    const long = `${"x".repeat(maxProviderMessageIdLength)}.${"y".repeat(10)}.z`;
    expect(linkCandidates(long)).toEqual(["x".repeat(maxProviderMessageIdLength)]);
    expect(linkCandidates("z".repeat(maxProviderMessageIdLength + 1))).toEqual([]);
  });

  it("links the longest registered id the message id equals or starts with followed by a dot", () => {
    expect(linkingId(legacy, new Set(["14c5d75ce93.dfd.64b469"]))).toBe("14c5d75ce93.dfd.64b469");
    expect(linkingId(legacy, new Set(["14c5d75ce93", "14c5d75ce93.dfd.64b469"]))).toBe(
      "14c5d75ce93.dfd.64b469",
    );
    expect(linkingId("abc", new Set(["abc"]))).toBe("abc");
    // Sharing text without the dot is not enough.
    expect(linkingId("abcd.x", new Set(["abc"]))).toBeUndefined();
    expect(linkingId("14c5d75ce93.dfd.64b4690.x", new Set(["14c5d75ce93.dfd.64b469"]))).toBeUndefined();
  });

  it("roots an id at its text before the first dot, which every id it links shares", () => {
    expect(messageIdRoot(legacy)).toBe("14c5d75ce93");
    expect(messageIdRoot("plain")).toBe("plain");
    for (const candidate of linkCandidates(legacy))
      expect(messageIdRoot(candidate)).toBe(messageIdRoot(legacy));
  });
});
