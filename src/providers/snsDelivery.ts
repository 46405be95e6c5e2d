import { HeraldError } from "../errors.js";
import {
  isSnsCertificateUrl,
  isSnsSubscribeUrl,
  type SnsEnvelope,
  snsEnvelope,
  verifySnsSignature,
} from "./snsSignature.js";
import type {
  AuthContext,
  ControlMessage,
  IncomingRequest,
  ParseResult,
  VerificationSettings,
} from "./types.js";

/**
 * Amazon SNS's HTTPS deliveries, as the SES provider (`ses.ts`) takes them: the envelope read from the body,
 * its authentication against a source's topic, and the subscription's control messages. Pure; the signing
 * certificate comes through the authentication context.
 */

/** Headers SNS sends with each message, kept with the archived body. */
export const keptHeaders = [
  "x-amz-sns-message-type",
  "x-amz-sns-message-id",
  "x-amz-sns-topic-arn",
  "x-amz-sns-subscription-arn",
];

/**
 * How far an SNS message's `Timestamp` may be behind the clock: SNS keeps the original time when it retries, and
 * retries an HTTP(S) delivery for at most an hour (its delivery policies cannot go past 3,600 s), so a genuine
 * message is never older than that; five minutes more for clock skew. Older is a replay. A replay inside the
 * window stores nothing new either: events are keyed by the SNS message id.
 */
export const maxMessageAgeMs = 65 * 60 * 1000;
/** How far it may be ahead of the clock (skew). */
export const maxClockSkewMs = 5 * 60 * 1000;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The body as an SNS envelope, or why not. */
export function readEnvelope(body: Buffer): { envelope: SnsEnvelope; text: string } | { error: ParseResult } {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(body);
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return {
      error: { ok: false, code: "invalid_json", detail: "The body is not valid UTF-8 JSON", path: "/body" },
    };
  }
  const envelope = snsEnvelope(value);
  if (!envelope)
    return {
      error: invalid(
        "The body is not an Amazon SNS message (Type, MessageId, TopicArn, Message and Timestamp, as strings)",
      ),
    };
  return { envelope, text };
}

export const invalid = (detail: string, path = "/body"): ParseResult => ({
  ok: false,
  code: "validation_failed",
  detail,
  path,
});

const refused = (detail: string) => new HeraldError("invalid_signature", detail);

/**
 * A source with a `topic_arn` takes only SNS messages of that topic, signed by SNS: the topic first (an
 * allow-list: a genuine message of someone else's topic is refused too), then the certificate URL's shape and
 * the timestamp — all before the certificate is fetched — then the signature over the canonical string.
 */
export async function authenticate(
  request: IncomingRequest,
  settings: VerificationSettings | null,
  context: AuthContext,
): Promise<HeraldError | undefined> {
  const topicArn = settings?.topic_arn;
  if (!topicArn) return undefined;
  const read = readEnvelope(request.body);
  if ("error" in read) return refused("Signed source: the body must be an Amazon SNS message");
  const { envelope } = read;
  if (envelope.TopicArn !== topicArn)
    return refused("The message is from another SNS topic than the source's");
  if (envelope.SignatureVersion !== "1" && envelope.SignatureVersion !== "2")
    return refused("SignatureVersion must be 1 (SHA1withRSA) or 2 (SHA256withRSA)");
  if (!isSnsCertificateUrl(envelope.SigningCertURL))
    return refused("SigningCertURL is not an https://sns.<region>.amazonaws.com/….pem URL");
  const at = Date.parse(envelope.Timestamp);
  const now = context.now().getTime();
  if (!/^\d{4}-\d\d-\d\dT/.test(envelope.Timestamp) || Number.isNaN(at))
    return refused("Timestamp is not an ISO 8601 time");
  if (at < now - maxMessageAgeMs || at > now + maxClockSkewMs)
    return refused(
      "The message's Timestamp is outside the accepted window (SNS retries for at most an hour)",
    );
  let pem: string;
  try {
    pem = await context.certificate(envelope.SigningCertURL);
  } catch (error) {
    // Not the sender's fault: answered 503, so SNS tries again.
    return new HeraldError(
      "unavailable",
      `The SNS signing certificate could not be fetched: ${(error as Error).message}`,
    );
  }
  return verifySnsSignature(envelope, pem)
    ? undefined
    : refused("The signature does not match the message and its signing certificate");
}

/**
 * A subscription's confirmation is a control message, not a delivery of events: confirmed (its `SubscribeURL`
 * visited) only for a source with a `topic_arn` — `authenticate` has then checked it is signed and of that
 * topic — and only when that URL is SNS's own confirmation of that topic; an unsubscribe confirmation is
 * noted. Neither is archived: they carry no events.
 */
export function control(body: Buffer, settings: VerificationSettings | null): ControlMessage | undefined {
  const read = readEnvelope(body);
  if ("error" in read || read.envelope.Type === "Notification") return undefined;
  const { envelope } = read;
  const topicArn = settings?.topic_arn;
  if (envelope.Type === "UnsubscribeConfirmation")
    return { kind: envelope.Type, note: `unsubscribed from ${envelope.TopicArn}; nothing done` };
  if (!topicArn)
    return {
      kind: envelope.Type,
      note: `not confirmed: the source has no topic_arn (confirm by hand: ${envelope.SubscribeURL})`,
    };
  if (!isSnsSubscribeUrl(envelope.SubscribeURL, topicArn))
    return {
      kind: envelope.Type,
      note: "not confirmed: SubscribeURL is not SNS's confirmation of the topic",
    };
  return { kind: envelope.Type, visit: envelope.SubscribeURL, note: `confirmed ${topicArn}` };
}
