import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { normalizeEmail } from "../domain/address.js";
import { unstorableEscape, unstorableNumber } from "../domain/jsonbText.js";
import { defaultMaxJsonDepth, jsonPointer, tooDeepAt } from "../domain/jsonDepth.js";
import { linkCandidates, messageIdRoot } from "../domain/messageIds.js";
import { type CanonicalEventType, emailEventTypes } from "../domain/messageStatus.js";
import { isUuid } from "../domain/uuid.js";
import { HeraldError } from "../errors.js";
import { deliveryAnswer } from "./answer.js";
import { rawTypeField } from "./rawType.js";
import { missingFields } from "./settings.js";
import type {
  CanonicalEvent,
  IncomingRequest,
  ParseResult,
  ProviderModule,
  VerificationSettings,
} from "./types.js";

/**
 * SendGrid's Event Webhook: signature check on the raw bytes, parsing, and mapping to canonical events.
 * Pure functions; nothing here touches the database.
 */

export const signatureHeader = "x-twilio-email-event-webhook-signature";
export const timestampHeader = "x-twilio-email-event-webhook-timestamp";

/** The configured key: the base64 DER (SubjectPublicKeyInfo) SendGrid shows, or a PEM. */
export function parsePublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  return trimmed.startsWith("-----BEGIN")
    ? createPublicKey(trimmed)
    : createPublicKey({ key: Buffer.from(trimmed, "base64"), format: "der", type: "spki" });
}

/** Parsed keys by their configured text: parsing a key costs more than verifying with it. */
const keyCache = new Map<string, KeyObject>();
const keyCacheLimit = 1000;

function cachedPublicKey(text: string): KeyObject {
  let key = keyCache.get(text);
  if (!key) {
    key = parsePublicKey(text);
    if (keyCache.size >= keyCacheLimit) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(text, key);
  }
  return key;
}

/**
 * Whether a public key as configured on a source is usable (checked when the source is created): a P-256 public
 * key, as SendGrid signs with. A private key is refused, though its public half could be derived from it: it
 * must not be stored.
 */
export function isValidPublicKey(text: string): boolean {
  if (text.includes("PRIVATE KEY")) return false;
  try {
    const key = parsePublicKey(text);
    return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
  } catch {
    return false;
  }
}

/**
 * ECDSA P-256 / SHA-256 over the timestamp header followed by the body bytes exactly as received. False for
 * anything malformed (never throws).
 */
export function verifySignature(
  publicKey: string,
  timestamp: string,
  body: Buffer,
  signatureBase64: string,
): boolean {
  try {
    const signature = Buffer.from(signatureBase64, "base64");
    if (signature.length === 0 || signature.length > 80) return false;
    return verify(
      "sha256",
      Buffer.concat([Buffer.from(timestamp, "utf8"), body]),
      cachedPublicKey(publicKey),
      signature,
    );
  } catch {
    return false;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A body refused as not a valid batch: `detail` says why, `path` where (`/body`, or `/body/3` for an event). */
const invalid = (detail: string, path = "/body"): ParseResult => ({
  ok: false,
  code: "validation_failed",
  detail,
  path,
});

/** The body must be UTF-8 JSON holding an array of objects (a leading BOM is allowed); each object is one event. */
export function parseBatch(body: Buffer): ParseResult {
  let value: unknown;
  let text: string;
  try {
    text = utf8.decode(body);
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return { ok: false, code: "invalid_json", detail: "The body is not valid UTF-8 JSON", path: "/body" };
  }
  if (!Array.isArray(value)) return invalid("The body must be a JSON array of events");
  const bad = value.findIndex((e) => e === null || typeof e !== "object" || Array.isArray(e));
  if (bad !== -1) return invalid(`Event ${bad} is not a JSON object`, `/body/${bad}`);
  // Valid JSON that PostgreSQL cannot store as jsonb would be accepted and then fail processing on every
  // attempt: refused here, where the sender learns of it. Escapes are read from the text itself (a parsed
  // object keeps only the last of repeated keys; a raw NUL or surrogate is not valid UTF-8, refused above),
  // and so are numbers.
  if (unstorableEscape(text)) {
    return invalid("The body holds a \\u0000 escape or an unpaired surrogate escape, which cannot be stored");
  }
  if (unstorableNumber(text)) {
    return invalid("The body holds a number beyond PostgreSQL's numeric range, which cannot be stored");
  }
  const deep = tooDeepAt(value, maxJsonDepth + 1);
  if (deep)
    return invalid(`Event ${deep[0]} nests deeper than ${maxJsonDepth} levels`, jsonPointer("/body", deep));
  return { ok: true, events: value as Record<string, unknown>[], text };
}

/** Nesting allowed inside one event (SendGrid's go three levels deep; jsonb's parser gives up near 20,000). */
const maxJsonDepth = defaultMaxJsonDepth;

/** SendGrid's own event names: the email event types but the one Herald derives (`blocked`). */
const known = new Set<string>(emailEventTypes.filter((t) => t !== "blocked"));

const str = (v: unknown): string | null => (typeof v === "string" && v.length > 0 ? v.slice(0, 2000) : null);

function canonicalType(event: Record<string, unknown>): CanonicalEventType {
  const name = event.event;
  if (typeof name !== "string" || !known.has(name)) return "unknown";
  // A bounce of type "blocked" is a block (soft, often reputation): not a hard bounce.
  if (name === "bounce" && event.type === "blocked") return "blocked";
  return name as CanonicalEventType;
}

/** When an event happened (the partition its rows go to): its timestamp, if plausible; else its receipt. */
export function eventTime(event: Record<string, unknown>, receivedAt: Date): Date {
  const ts = event.timestamp;
  const seconds =
    typeof ts === "number" ? ts : typeof ts === "string" && /^\d{9,11}$/.test(ts) ? Number(ts) : NaN;
  // Plausible Unix seconds only, from 2001 to a day after receipt (each month is a partition: a far-future
  // time would create them at will); anything else falls back to the time it was received.
  const latest = receivedAt.getTime() / 1000 + 86_400;
  return Number.isFinite(seconds) && seconds > 1e9 && seconds < latest
    ? new Date(seconds * 1000)
    : receivedAt;
}

function messageIdOf(event: Record<string, unknown>): string | null {
  const sg = str(event.sg_message_id);
  if (sg) return sg;
  // Asynchronous bounces lack sg_message_id; smtp-id is "<X-Message-Id@host>".
  const smtp = str(event["smtp-id"]);
  const match = smtp ? /^<?([^@>]+)@/.exec(smtp) : null;
  return match?.[1] ?? null;
}

// Values Herald indexes must fit a btree entry (~2,700 bytes), so none goes into an index past
// `maxIndexedBytes`: a longer `sg_event_id` is keyed by its hash; a longer address, or message id before its
// first ".", cannot be one the messages API took (320 and 500 characters at most), and stays in the payload.
const maxIndexedBytes = 2000;
const indexable = (value: string | null) =>
  value !== null && Buffer.byteLength(value) <= maxIndexedBytes ? value : null;

/** An unsubscribe group's id: a whole number that fits the `int` column, given as a number or digits. */
function groupIdOf(value: unknown): number | null {
  const id = typeof value === "string" && /^\d{1,10}$/.test(value) ? Number(value) : value;
  return typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= 2_147_483_647 ? id : null;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export function normalizeEvent(event: Record<string, unknown>, receivedAt: Date): CanonicalEvent {
  const type = canonicalType(event);
  const eventAt = eventTime(event, receivedAt);
  const providerEventId = str(event.sg_event_id);
  const messageId = messageIdOf(event);
  const email = str(event.email);
  const url = str(event.url);
  const eventId = typeof event.sg_event_id === "string" ? event.sg_event_id : "";
  const dedupeKey = providerEventId
    ? (indexable(eventId) ?? `k:${sha256(eventId)}`)
    : `h:${sha256(
        JSON.stringify([
          messageId,
          event.event ?? null,
          event.timestamp ?? null,
          email,
          url,
          event.asm_group_id ?? null,
        ]),
      )}`;
  const custom = str(event.herald_message_id);
  return {
    type,
    eventAt,
    dedupeKey,
    providerEventId,
    providerMessageId: messageId === null || indexable(messageIdRoot(messageId)) === null ? null : messageId,
    heraldMessageId: custom && isUuid(custom) ? custom.toLowerCase() : null,
    recipient: indexable(email === null ? null : normalizeEmail(email)),
    url,
    ip: str(event.ip),
    userAgent: str(event.useragent),
    reason: str(event.reason) ?? str(event.response),
    bounceClassification: str(event.bounce_classification),
    machineOpen: typeof event.sg_machine_open === "boolean" ? event.sg_machine_open : null,
    groupId: groupIdOf(event.asm_group_id),
    payload: event,
  };
}

const header = (headers: IncomingRequest["headers"], name: string) => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** A signed source's check: the signature over the timestamp header and the exact body bytes. */
function authenticate(
  request: IncomingRequest,
  settings: VerificationSettings | null,
): HeraldError | undefined {
  const publicKey = settings?.public_key;
  if (!publicKey) return undefined;
  const signature = header(request.headers, signatureHeader);
  const timestamp = header(request.headers, timestampHeader);
  if (!signature || !timestamp) {
    return new HeraldError(
      "invalid_signature",
      `Signed source: send ${signatureHeader} and ${timestampHeader}`,
    );
  }
  if (!verifySignature(publicKey, timestamp, request.body, signature)) {
    return new HeraldError("invalid_signature", "The signature does not match the body and timestamp");
  }
  return undefined;
}

/** SendGrid's Event Webhook (an email provider): a JSON array of events, optionally signed (ECDSA P-256). */
export const sendgrid: ProviderModule = {
  name: "sendgrid",
  channel: "email",
  verificationFields: ["public_key"],
  validateVerification(settings) {
    const missing = missingFields("sendgrid", this.verificationFields, settings);
    if (missing) return missing;
    // A key that does not parse would turn every delivery into a 401 that SendGrid retries, then drops.
    if (!isValidPublicKey(settings.public_key!)) {
      return {
        detail: "public_key is not a P-256 public key (base64 DER or PEM), as SendGrid shows it",
        errors: [{ field: "public_key", message: "is not a P-256 public key" }],
      };
    }
    return undefined;
  },
  keptHeaders: [signatureHeader, timestampHeader],
  authenticate,
  parse: parseBatch,
  eventsAreBodyItems: true,
  eventTime,
  normalize: normalizeEvent,
  rawType: rawTypeField("event"),
  linkCandidates,
  answer: deliveryAnswer,
};
