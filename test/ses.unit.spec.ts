import { EventEmitter } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { httpsGetText, snsCertificates } from "../src/ingest/snsCertificates.js";
import { parseNotification, ses } from "../src/providers/ses.js";
import { maxClockSkewMs, maxMessageAgeMs } from "../src/providers/snsDelivery.js";
import { isSnsCertificateUrl, isSnsSubscribeUrl, stringToSign } from "../src/providers/snsSignature.js";
import type { AuthContext, CanonicalEvent } from "../src/providers/types.js";
import {
  canonicalString,
  certificateUrl,
  type Envelope,
  notification,
  sesEvent,
  signed,
  snsKeys,
  subscriptionConfirmation,
  topicArn,
} from "./support/sns.js";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/ses/${name}`, import.meta.url));
const receivedAt = new Date("2026-11-22T12:00:00Z");
const keys = snsKeys();

/** A context whose certificates are the test's, recording each URL asked for. */
function context(pem = keys.certificatePem, now = () => new Date()) {
  const asked: string[] = [];
  const ctx: AuthContext = {
    now,
    firstUse: async () => true,
    certificate: async (url) => {
      asked.push(url);
      return pem;
    },
  };
  return { ctx, asked };
}

const request = (body: string | Buffer) => ({
  headers: { "content-type": "text/plain; charset=UTF-8" },
  body: Buffer.isBuffer(body) ? body : Buffer.from(body),
  remoteIp: undefined,
  publicUrl: "https://herald.example.com/api/v1/webhooks/ses/x",
});
const settings = { topic_arn: topicArn };
const events = (body: Buffer | string) => {
  const parsed = parseNotification(Buffer.isBuffer(body) ? body : Buffer.from(body));
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.events.map((raw) => ses.normalize(raw, receivedAt));
};
const pick = (e: CanonicalEvent) => ({
  type: e.type,
  recipient: e.recipient,
  reason: e.reason,
  eventAt: e.eventAt.toISOString(),
});

describe("SES notifications and events, normalized from AWS's documented payloads", () => {
  const mailId = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000";
  const cases: [string, ReturnType<typeof pick>[], Partial<CanonicalEvent>?][] = [
    [
      "notification-bounce-permanent.json",
      [
        {
          type: "bounce",
          recipient: "jane@example.com",
          reason: "smtp; 550 5.1.1 user unknown",
          eventAt: "2016-01-27T14:59:38.237Z",
        },
        {
          type: "bounce",
          recipient: "richard@example.com",
          reason: "smtp; 550 5.1.1 user unknown",
          eventAt: "2016-01-27T14:59:38.237Z",
        },
      ],
      {
        bounceClassification: "Permanent/General",
        providerMessageId: "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
      },
    ],
    [
      "notification-complaint.json",
      [
        {
          type: "spamreport",
          recipient: "richard@example.com",
          reason: "abuse",
          eventAt: "2016-01-27T14:59:38.237Z",
        },
      ],
      { userAgent: "AnyCompany Feedback Loop (V0.01)" },
    ],
    [
      "notification-delivery.json",
      [
        {
          type: "delivered",
          recipient: "jane@example.com",
          reason: "250 ok:  Message 64111812 accepted",
          eventAt: "2016-01-27T14:59:38.237Z",
        },
        {
          type: "delivered",
          recipient: "mary@example.com",
          reason: "250 ok:  Message 64111812 accepted",
          eventAt: "2016-01-27T14:59:38.237Z",
        },
      ],
    ],
    [
      "event-bounce-transient.json",
      [
        {
          type: "deferred",
          recipient: "recipient@example.com",
          reason: "smtp; 452 4.2.2 mailbox full",
          eventAt: "2017-08-05T00:41:02.669Z",
        },
      ],
      { bounceClassification: "Transient/MailboxFull", providerMessageId: mailId },
    ],
    [
      "event-send.json",
      [
        {
          type: "processed",
          recipient: "recipient@example.com",
          reason: null,
          eventAt: "2016-10-14T05:02:16.645Z",
        },
        {
          type: "processed",
          recipient: "second@example.com",
          reason: null,
          eventAt: "2016-10-14T05:02:16.645Z",
        },
      ],
    ],
    [
      "event-reject.json",
      [
        {
          type: "dropped",
          recipient: "recipient@example.com",
          reason: "Bad content",
          eventAt: "2016-10-14T17:38:15.211Z",
        },
      ],
    ],
    [
      "event-open.json",
      [
        {
          type: "open",
          recipient: "recipient@example.com",
          reason: null,
          eventAt: "2017-08-09T22:00:19.652Z",
        },
      ],
      { ip: "192.0.2.1", url: null },
    ],
    [
      "event-click.json",
      [
        {
          type: "click",
          recipient: "recipient@example.com",
          reason: null,
          eventAt: "2017-08-09T23:51:25.570Z",
        },
      ],
      { ip: "192.0.2.1", url: "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html" },
    ],
    [
      "event-rendering-failure.json",
      [
        {
          type: "dropped",
          recipient: "recipient@example.com",
          reason: "Attribute 'attributeName' is not present in the rendering data.",
          eventAt: "2018-01-22T18:43:06.197Z",
        },
      ],
    ],
    [
      "event-delivery-delay.json",
      [
        {
          type: "deferred",
          recipient: "recipient@example.com",
          reason: "smtp; 421 4.4.1 Unable to connect to remote host",
          eventAt: "2020-06-16T00:25:40.095Z",
        },
      ],
    ],
    [
      "event-subscription.json",
      [
        {
          type: "unsubscribe",
          recipient: "recipient@example.com",
          reason: null,
          eventAt: "2022-01-12T01:00:17.910Z",
        },
      ],
      { groupId: null },
    ],
  ];

  it.each(cases)("%s", (file, expected, fields = {}) => {
    const body = fixture(file);
    const normalized = events(body);
    expect(normalized.map(pick)).toEqual(expected);
    const envelope = JSON.parse(body.toString());
    for (const event of normalized) {
      expect(event).toMatchObject(fields);
      // Keyed by the SNS message and the recipient; the SNS message id is the provider's event id.
      expect(event.dedupeKey).toBe(`${envelope.MessageId}/${event.recipient}`);
      expect(event.providerEventId).toBe(envelope.MessageId);
      expect(event.providerMessageId).toBe(JSON.parse(envelope.Message).mail.messageId);
      // Self-contained: the payload alone, as stored and read back, normalizes the same (reprocessing).
      const stored = JSON.parse(JSON.stringify(event.payload));
      expect({ ...ses.normalize(stored, new Date()), payload: null }).toEqual({ ...event, payload: null });
      expect(stored.sns.MessageId).toBe(envelope.MessageId);
    }
  });

  it("maps bounce types and subtypes by the written table", () => {
    const table: [string, string, string][] = [
      ["Permanent", "General", "bounce"],
      ["Permanent", "NoEmail", "bounce"],
      ["Permanent", "UnsupportedAttachment", "bounce"],
      ["Permanent", "Suppressed", "dropped"],
      ["Permanent", "OnAccountSuppressionList", "dropped"],
      ["Transient", "General", "deferred"],
      ["Transient", "MailboxFull", "deferred"],
      ["Transient", "MessageTooLarge", "blocked"],
      ["Transient", "ContentRejected", "blocked"],
      ["Transient", "AttachmentRejected", "blocked"],
      ["Undetermined", "Undetermined", "deferred"],
      ["Sideways", "General", "unknown"],
    ];
    for (const [bounceType, bounceSubType, type] of table) {
      for (const shape of ["eventType", "notificationType"]) {
        const message = {
          [shape]: "Bounce",
          mail: { messageId: "m-1", destination: ["a@example.com"], timestamp: "2026-11-22T11:00:00Z" },
          bounce: { bounceType, bounceSubType, bouncedRecipients: [{ emailAddress: "a@example.com" }] },
        };
        const [event] = events(JSON.stringify(notification(message)));
        expect(event!.type, `${bounceType}/${bounceSubType}`).toBe(type);
      }
    }
  });

  it("reads complaints' feedback and subscriptions' preferences", () => {
    const complaint = (extra: object) =>
      events(
        JSON.stringify(
          notification({
            notificationType: "Complaint",
            mail: { messageId: "m-2", destination: ["a@example.com"] },
            complaint: { complainedRecipients: [{ emailAddress: "A@Example.com" }], ...extra },
          }),
        ),
      )[0]!;
    expect(complaint({ complaintFeedbackType: "abuse" })).toMatchObject({
      type: "spamreport",
      recipient: "a@example.com",
    });
    expect(complaint({}).type).toBe("spamreport");
    expect(complaint({ complaintSubType: "OnAccountSuppressionList" }).type).toBe("dropped");
    expect(complaint({ complaintFeedbackType: "not-spam" }).type).toBe("unknown");

    const subscription = (before: object, after: object) =>
      events(
        JSON.stringify(
          notification(
            sesEvent("Subscription", "m-3", ["a@example.com"], {
              subscription: { contactList: "L", newTopicPreferences: after, oldTopicPreferences: before },
            }),
          ),
        ),
      )[0]!.type;
    const topic = (subscriptionStatus: string) => ({
      topicSubscriptionStatus: [{ topicName: "news", subscriptionStatus }],
    });
    expect(subscription({ unsubscribeAll: false }, { unsubscribeAll: true })).toBe("unsubscribe");
    expect(subscription(topic("OptIn"), topic("OptOut"))).toBe("group_unsubscribe");
    expect(subscription(topic("OptOut"), topic("OptIn"))).toBe("group_resubscribe");
    expect(subscription({ unsubscribeAll: true }, { unsubscribeAll: false })).toBe("group_resubscribe");
    expect(subscription(topic("OptIn"), topic("OptIn"))).toBe("unknown");
  });

  it("makes one event per recipient, each recipient once, and keeps what it does not know", () => {
    const many = events(
      JSON.stringify(
        notification(
          sesEvent(
            "Send",
            "m-4",
            ["a@example.com", "B@example.com", "b@example.com", "Carol <c@example.com>"],
            { send: {} },
          ),
        ),
      ),
    );
    expect(many.map((e) => e.recipient)).toEqual(["a@example.com", "b@example.com", "c@example.com"]);
    expect(new Set(many.map((e) => e.dedupeKey)).size).toBe(3);

    // SES's test message when a topic is set up, a receipt notification, and a Message that is not JSON.
    for (const message of [
      { notificationType: "AmazonSnsSubscriptionSucceeded", message: "You have successfully subscribed" },
      { notificationType: "Received", mail: { messageId: "m-5", destination: ["in@example.com"] } },
      "plain text published to the topic",
    ]) {
      const body = JSON.stringify(notification(message));
      const [event, ...rest] = events(body);
      expect(rest).toHaveLength(0);
      expect(event).toMatchObject({ type: "unknown", recipient: null });
      expect(event!.payload).toMatchObject(
        typeof message === "string" ? { message } : { notification: message },
      );
    }
  });

  it("refuses what is not an SNS notification, saying where", () => {
    for (const [body, path] of [
      ["[]", "/body"],
      ['{"Type":"Notification"}', "/body"],
      [JSON.stringify(subscriptionConfirmation()), "/body/Type"],
      [JSON.stringify(notification('{"a":"\\u0000"}')), "/body"],
    ] as const) {
      const parsed = parseNotification(Buffer.from(body));
      expect(parsed.ok, body).toBe(false);
      if (!parsed.ok) expect(parsed.path).toBe(path);
    }
  });

  it("takes an SNS topic ARN as its setting", () => {
    expect(ses.validateVerification({ topic_arn: topicArn })).toBeUndefined();
    expect(
      ses.validateVerification({ topic_arn: "arn:aws-cn:sns:cn-north-1:123456789012:t.fifo" }),
    ).toBeUndefined();
    expect(ses.validateVerification({ topic_arn: "ses-events" })?.errors).toEqual([
      { field: "topic_arn", message: "is not an SNS topic ARN" },
    ]);
  });
});

describe("SNS signatures", () => {
  const body = (envelope: Envelope) => JSON.stringify(envelope);
  const message = sesEvent("Delivery", "m-6", ["a@example.com"], {
    delivery: { recipients: ["a@example.com"] },
  });

  it("builds the canonical string of each message type as AWS describes it", () => {
    const withSubject = notification(message, { Subject: "Amazon SES Email Event Notification" });
    expect(stringToSign(withSubject as never)).toBe(canonicalString(withSubject));
    expect(stringToSign(withSubject as never)).toMatch(
      /^Message\n.*\nMessageId\n.*\nSubject\n.*\nTimestamp\n/s,
    );
    const confirmation = subscriptionConfirmation();
    expect(stringToSign(confirmation as never)).toBe(canonicalString(confirmation));
    expect(stringToSign(confirmation as never)).toMatch(
      /\nSubscribeURL\n.*\nTimestamp\n.*\nToken\n.*\nTopicArn\n/s,
    );
  });

  it.each([
    "1",
    "2",
  ] as const)("takes SignatureVersion %s, signed with the certificate's key", async (version) => {
    for (const envelope of [
      notification(message),
      notification(message, { Subject: "Subject line" }),
      subscriptionConfirmation(),
    ]) {
      const { ctx, asked } = context();
      expect(
        await ses.authenticate(request(body(signed(envelope, keys, version))), settings, ctx),
      ).toBeUndefined();
      expect(asked).toEqual([certificateUrl]);
    }
  });

  it("refuses a wrong signature, another key, another version, and a message changed after signing", async () => {
    const good = signed(notification(message), keys);
    const other = signed(notification(message), snsKeys());
    const variants: Envelope[] = [
      { ...good, Signature: `${good.Signature!.slice(0, -8)}AAAAAAA=` },
      { ...good, Signature: "" },
      other,
      { ...good, SignatureVersion: "1" },
      { ...good, SignatureVersion: "3" },
      { ...good, Message: good.Message!.replace("a@example.com", "b@example.com") },
      { ...good, Subject: "added after signing" },
      { ...good, MessageId: "another" },
    ];
    for (const envelope of variants) {
      const refused = await ses.authenticate(request(body(envelope)), settings, context().ctx);
      expect(refused?.code, JSON.stringify(envelope).slice(0, 80)).toBe("invalid_signature");
    }
    const notSns = await ses.authenticate(request("not json"), settings, context().ctx);
    expect(notSns?.code).toBe("invalid_signature");
  });

  it("refuses another topic's genuine message before fetching any certificate", async () => {
    const { ctx, asked } = context();
    const foreign = signed(
      notification(message, { TopicArn: "arn:aws:sns:us-east-1:999999999999:theirs" }),
      keys,
    );
    expect((await ses.authenticate(request(body(foreign)), settings, ctx))?.code).toBe("invalid_signature");
    expect(asked).toEqual([]);
  });

  it("fetches certificates only from https://sns.<region>.amazonaws.com/….pem", async () => {
    const refusedUrls = [
      "https://sns.us-east-1.amazonaws.com.evil.com/cert.pem",
      "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
      "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem.txt",
      "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1",
      "https://sns.us-east-1.amazonaws.com/a/../../evil.pem",
      "https://sns.us-east-1.amazonaws.com/x.pem?.pem",
      "https://sns.us-east-1.amazonaws.com/x.pem#.pem",
      "https://sns.us-east-1.amazonaws.com:8443/x.pem",
      "https://evil.com@sns.us-east-1.amazonaws.com/x.pem",
      "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
      "https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem",
      "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
      "https://s3.amazonaws.com/sns.us-east-1/x.pem",
      "https://sns.amazonaws.com/x.pem",
      "https://sns.us-east-1.amazonaws.com.cn/x.pem",
      "https://sns.evil.amazonaws.com/x.pem",
      "https://sns.us-east-1.evil.com/x.pem",
      "https://xsns.us-east-1.amazonaws.com/x.pem",
      "https://SNS.US-EAST-1.AMAZONAWS.COM/x.pem",
      "https://sns.us-east-1.amazonaws.com/%2e%2e/x.pem",
      " https://sns.us-east-1.amazonaws.com/x.pem",
      "https://sns.us-east-1.amazonaws.com/x.pem\n",
      "https://sns.us-east-1.amazonaws.com./x.pem",
    ];
    for (const url of refusedUrls) {
      expect(isSnsCertificateUrl(url), url).toBe(false);
      const { ctx, asked } = context();
      const envelope = signed(notification(message, { SigningCertURL: url }), keys);
      expect((await ses.authenticate(request(body(envelope)), settings, ctx))?.code, url).toBe(
        "invalid_signature",
      );
      expect(asked, url).toEqual([]);
    }
    for (const url of [
      certificateUrl,
      "https://sns.eu-central-2.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem",
      "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-1.pem",
      "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
    ])
      expect(isSnsCertificateUrl(url), url).toBe(true);
  });

  it("refuses a Timestamp outside the window, SNS's hour of retries and five minutes of skew", async () => {
    const now = new Date("2026-11-22T12:00:00Z");
    const at = (offsetMs: number) =>
      body(signed(notification(message, {}, new Date(now.getTime() + offsetMs)), keys));
    const check = (offsetMs: number) =>
      ses.authenticate(request(at(offsetMs)), settings, context(undefined, () => now).ctx);
    expect(await check(-60 * 60 * 1000)).toBeUndefined();
    expect(await check(-maxMessageAgeMs + 1000)).toBeUndefined();
    expect(await check(maxClockSkewMs - 1000)).toBeUndefined();
    expect((await check(-maxMessageAgeMs - 1000))?.code).toBe("invalid_signature");
    expect((await check(maxClockSkewMs + 1000))?.code).toBe("invalid_signature");
    const garbled = signed({ ...notification(message), Timestamp: "yesterday" }, keys);
    expect((await ses.authenticate(request(body(garbled)), settings, context().ctx))?.code).toBe(
      "invalid_signature",
    );
  });

  it("answers 503 when the certificate cannot be had (SNS retries)", async () => {
    const ctx: AuthContext = {
      now: () => new Date(),
      firstUse: async () => true,
      certificate: async () => {
        throw new Error("timeout");
      },
    };
    expect(
      (await ses.authenticate(request(body(signed(notification(message), keys))), settings, ctx))?.code,
    ).toBe("unavailable");
  });

  describe("cross-checked with sns-validator 0.3.5", () => {
    const MessageValidator = createRequire(import.meta.url)("sns-validator") as new () => {
      validate(message: object, cb: (error: Error | null) => void): void;
    };
    afterEach(() => vi.restoreAllMocks());

    /** sns-validator fetches the certificate itself with https.get: answered here, offline, with the test's. */
    function serveCertificate(pem: string) {
      const spy = vi.spyOn(https, "get").mockImplementation(((
        _url: string,
        callback: (r: EventEmitter) => void,
      ) => {
        const response = Object.assign(new EventEmitter(), { statusCode: 200 });
        queueMicrotask(() => {
          callback(response);
          response.emit("data", Buffer.from(pem));
          response.emit("end");
        });
        return new EventEmitter();
      }) as never);
      return spy;
    }
    const validate = (envelope: Envelope) =>
      new Promise<boolean>((resolve) =>
        new MessageValidator().validate(envelope, (error) => resolve(error === null)),
      );

    it.each(["1", "2"] as const)("agrees with it on SignatureVersion %s, valid or not", async (version) => {
      // sns-validator caches certificates by URL for the process: a URL of this test's own.
      const url = `https://sns.us-west-2.amazonaws.com/SimpleNotificationService-v${version}.pem`;
      const spy = serveCertificate(keys.certificatePem);
      const good = signed(notification(message, { SigningCertURL: url, Subject: "s" }), keys, version);
      const confirmation = signed({ ...subscriptionConfirmation(), SigningCertURL: url }, keys, version);
      const bad = { ...good, Message: `${good.Message} ` };
      for (const [envelope, valid] of [
        [good, true],
        [confirmation, true],
        [bad, false],
      ] as const) {
        expect(await validate(envelope)).toBe(valid);
        const ours = await ses.authenticate(request(body(envelope)), settings, context().ctx);
        expect(ours === undefined).toBe(valid);
      }
      expect(spy).toHaveBeenCalledWith(url, expect.any(Function));
    });
  });
});

describe("SNS control messages", () => {
  it("confirms a subscription of the source's topic only, by SNS's own URL", () => {
    const confirmation = subscriptionConfirmation();
    const body = Buffer.from(JSON.stringify(confirmation));
    expect(ses.control!(body, settings)).toMatchObject({
      kind: "SubscriptionConfirmation",
      visit: confirmation.SubscribeURL,
    });
    // An unverified source is not subscribed on anyone's say-so.
    expect(ses.control!(body, null)?.visit).toBeUndefined();
    for (const url of [
      "https://sns.us-east-1.amazonaws.com.evil.com/?Action=ConfirmSubscription&TopicArn=x",
      `http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${topicArn}&Token=t`,
      `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&TopicArn=${topicArn}&Token=t`,
      `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:1:other&Token=t`,
      `https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${topicArn}&TopicArn=other&Token=t`,
    ]) {
      expect(isSnsSubscribeUrl(url, topicArn), url).toBe(false);
      const other = Buffer.from(JSON.stringify({ ...confirmation, SubscribeURL: url }));
      expect(ses.control!(other, settings)?.visit, url).toBeUndefined();
    }
    const unsubscribe = Buffer.from(JSON.stringify({ ...confirmation, Type: "UnsubscribeConfirmation" }));
    expect(ses.control!(unsubscribe, settings)).toMatchObject({ kind: "UnsubscribeConfirmation" });
    expect(ses.control!(unsubscribe, settings)?.visit).toBeUndefined();
    expect(ses.control!(Buffer.from(JSON.stringify(notification({}))), settings)).toBeUndefined();
    expect(ses.control!(Buffer.from("{"), settings)).toBeUndefined();
  });

  it("confirmations in the fixtures are control messages", () => {
    for (const file of ["control/subscription-confirmation.json", "control/unsubscribe-confirmation.json"])
      expect(ses.control!(fixture(file), settings)?.kind).toBe(JSON.parse(fixture(file).toString()).Type);
  });
});

describe("SNS certificates (ingest)", () => {
  it("are fetched once per URL (concurrent asks share the fetch) and kept until they expire", async () => {
    let now = 0;
    const fetched: string[] = [];
    const certificate = snsCertificates({
      fetch: async (url) => {
        fetched.push(url);
        return `junk\n${keys.certificatePem}`;
      },
      ttlMs: 1000,
      now: () => now,
    });
    const [a, b] = await Promise.all([certificate(certificateUrl), certificate(certificateUrl)]);
    expect(a).toBe(keys.certificatePem.trim());
    expect(b).toBe(a);
    await certificate(certificateUrl);
    expect(fetched).toHaveLength(1);
    now = 1001;
    await certificate(certificateUrl);
    expect(fetched).toHaveLength(2);
  });

  it("remember a failure briefly, then try again; refuse what is not a certificate", async () => {
    let now = 0;
    let calls = 0;
    const certificate = snsCertificates({
      fetch: async () => {
        calls += 1;
        return calls === 1 ? "<html>not found</html>" : keys.certificatePem;
      },
      failureTtlMs: 100,
      now: () => now,
    });
    await expect(certificate(certificateUrl)).rejects.toThrow(/not a PEM certificate/);
    await expect(certificate(certificateUrl)).rejects.toThrow();
    expect(calls).toBe(1);
    now = 101;
    expect(await certificate(certificateUrl)).toContain("BEGIN CERTIFICATE");
  });

  it("come from HERALD_SNS_CERTIFICATE_FILE when it is set (nothing fetched)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "herald-ses-"));
    const file = join(dir, "sns.pem");
    writeFileSync(file, keys.certificatePem);
    const certificate = snsCertificates({
      file,
      fetch: async () => {
        throw new Error("fetched");
      },
    });
    expect(await certificate(certificateUrl)).toBe(keys.certificatePem.trim());
    expect(loadConfig({ HERALD_SNS_CERTIFICATE_FILE: file }).snsCertificateFile).toBe(file);
    expect(() => loadConfig({ HERALD_SNS_CERTIFICATE_FILE: join(dir, "missing.pem") })).toThrow(ConfigError);
    writeFileSync(join(dir, "key.pem"), keys.privateKeyPem);
    expect(() => loadConfig({ HERALD_SNS_CERTIFICATE_FILE: join(dir, "key.pem") })).toThrow(
      /no PEM certificate/,
    );
  });

  it("are fetched over https only", async () => {
    await expect(httpsGetText("http://sns.us-east-1.amazonaws.com/x.pem")).rejects.toThrow(/https/);
  });

  describe("within bounds of time and size", () => {
    afterEach(() => vi.restoreAllMocks());

    /** https.get answered offline: `respond` drives the response; the request can be destroyed as Node's can. */
    function fakeGet(status: number, respond: (response: EventEmitter) => void) {
      return vi.spyOn(https, "get").mockImplementation(((
        _url: string,
        _options: object,
        callback: (r: EventEmitter) => void,
      ) => {
        const request = Object.assign(new EventEmitter(), {
          destroy(error?: Error) {
            if (error) request.emit("error", error);
            request.emit("close");
          },
        });
        const response = Object.assign(new EventEmitter(), { statusCode: status, resume() {} });
        queueMicrotask(() => {
          callback(response);
          respond(response);
        });
        return request;
      }) as never);
    }

    it("reads a 200's body, refuses other statuses, a body past the bound and a stalled answer", async () => {
      fakeGet(200, (r) => {
        r.emit("data", Buffer.from(keys.certificatePem));
        r.emit("end");
      });
      expect(await httpsGetText(certificateUrl)).toBe(keys.certificatePem);
      vi.restoreAllMocks();
      fakeGet(404, () => {});
      await expect(httpsGetText(certificateUrl)).rejects.toThrow(/404/);
      vi.restoreAllMocks();
      fakeGet(200, (r) => {
        for (let i = 0; i < 10; i++) r.emit("data", Buffer.alloc(1024, 65));
        r.emit("end");
      });
      await expect(httpsGetText(certificateUrl, { maxBytes: 4096 })).rejects.toThrow(/larger than 4096/);
      vi.restoreAllMocks();
      fakeGet(200, (r) => r.emit("data", Buffer.from("-----BEGIN")));
      await expect(httpsGetText(certificateUrl, { timeoutMs: 50 })).rejects.toThrow(/took over 50 ms/);
    });
  });
});
