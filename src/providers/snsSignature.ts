import { type KeyObject, verify, X509Certificate } from "node:crypto";

/**
 * Amazon SNS's HTTP(S) messages: the JSON envelope SNS posts, the string it signs, and the checks made on its
 * URLs before anything is fetched. Pure; the certificate itself comes from the ingest layer
 * (`ingest/snsCertificates.ts`), through the authentication context.
 */

/** The message types SNS posts to an HTTP(S) subscription. */
export type SnsMessageType = "Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation";

/** An SNS message as posted: its fields are strings (`Subject` is absent or null when there is none). */
export interface SnsEnvelope {
  Type: SnsMessageType;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  Subject?: string;
  SubscribeURL?: string;
  Token?: string;
  SignatureVersion?: string;
  Signature?: string;
  SigningCertURL?: string;
}

const types = new Set<string>(["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]);

/** A parsed body that is an SNS envelope (its required fields strings), else undefined. */
export function snsEnvelope(value: unknown): SnsEnvelope | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.Type !== "string" || !types.has(v.Type)) return undefined;
  for (const field of ["MessageId", "TopicArn", "Message", "Timestamp"])
    if (typeof v[field] !== "string") return undefined;
  if (v.Type !== "Notification" && (typeof v.SubscribeURL !== "string" || typeof v.Token !== "string"))
    return undefined;
  return v as unknown as SnsEnvelope;
}

/**
 * The string SNS signs: for each field of the message's type, in this order, its name and its value, each
 * followed by a newline. A notification's `Subject` only when it has one; a confirmation has no subject but
 * its `SubscribeURL` and `Token`. Undefined when a field that must be signed is missing.
 */
export function stringToSign(envelope: SnsEnvelope): string | undefined {
  const fields =
    envelope.Type === "Notification"
      ? ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
      : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];
  let text = "";
  for (const field of fields) {
    const value = (envelope as unknown as Record<string, unknown>)[field];
    if (value === undefined || value === null) {
      if (field === "Subject") continue;
      return undefined;
    }
    if (typeof value !== "string") return undefined;
    text += `${field}\n${value}\n`;
  }
  return text;
}

/**
 * An AWS region as it appears in an SNS host name (`us-east-1`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-5`):
 * letters, dashes and a final number, nothing else.
 */
const region = "[a-z]{2}(?:-[a-z]+)+-\\d{1,2}";
/** `sns.<region>.amazonaws.com` — or `.amazonaws.com.cn` for the China regions, whose certificates live there. */
const snsHost = `sns\\.(?:${region}\\.amazonaws\\.com|cn-[a-z]+-\\d{1,2}\\.amazonaws\\.com\\.cn)`;

/**
 * `SigningCertURL` as SNS gives it: `https://sns.<region>.amazonaws.com/<name>.pem`, matched on the text as
 * received, whole — no user info, port, query, fragment, backslash, percent-escape or second path segment can
 * pass, so no URL parser's reading of it can lead anywhere else. Checked before anything is fetched.
 */
const certificateUrlPattern = new RegExp(`^https://${snsHost}/[A-Za-z0-9._-]{1,200}\\.pem$`);

export const isSnsCertificateUrl = (url: unknown): url is string =>
  typeof url === "string" && certificateUrlPattern.test(url);

/**
 * `SubscribeURL`: SNS's own `ConfirmSubscription` action on an SNS host (`https://sns.<region>.amazonaws.com/
 * ?Action=ConfirmSubscription&TopicArn=…&Token=…`), the query of plain URL characters only.
 */
const subscribeUrlPattern = new RegExp(
  `^https://${snsHost}/\\?Action=ConfirmSubscription&[A-Za-z0-9._~%&=:+-]{1,4000}$`,
);

/** Whether a `SubscribeURL` is one to visit: SNS's confirmation of a subscription to `topicArn`. */
export function isSnsSubscribeUrl(url: unknown, topicArn: string): url is string {
  if (typeof url !== "string" || !subscribeUrlPattern.test(url)) return false;
  const query = new URLSearchParams(url.slice(url.indexOf("?") + 1));
  return query.getAll("TopicArn").length === 1 && query.get("TopicArn") === topicArn;
}

/** Parsed certificates by their PEM text (parsing costs more than verifying), a few at a time. */
const keyCache = new Map<string, KeyObject>();
const keyCacheLimit = 100;

function publicKeyOf(pem: string): KeyObject {
  let key = keyCache.get(pem);
  if (!key) {
    key = new X509Certificate(pem).publicKey;
    if (keyCache.size >= keyCacheLimit) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(pem, key);
  }
  return key;
}

/**
 * Whether `envelope` is signed by the certificate `pem`: SignatureVersion 1 is SHA1withRSA, 2 is
 * SHA256withRSA, over `stringToSign`; any other version is refused. False for anything malformed (never throws).
 */
export function verifySnsSignature(envelope: SnsEnvelope, pem: string): boolean {
  const hash =
    envelope.SignatureVersion === "1" ? "sha1" : envelope.SignatureVersion === "2" ? "sha256" : undefined;
  const text = stringToSign(envelope);
  const signature = typeof envelope.Signature === "string" ? envelope.Signature : "";
  if (!hash || text === undefined || signature.length === 0 || signature.length > 2000) return false;
  try {
    return verify(hash, Buffer.from(text, "utf8"), publicKeyOf(pem), Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}
