import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { normalizeEmail } from "../domain/address.js";
import { unstorableEscape, unstorableNumber } from "../domain/jsonbText.js";
import { defaultMaxJsonDepth, jsonPointer, tooDeepAt } from "../domain/jsonDepth.js";
import { type CanonicalEventType, canonicalEventTypes } from "../domain/messageStatus.js";
import { isUuid } from "../domain/uuid.js";

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

export type ParseResult =
  /** `text`: the body decoded, byte for byte (a leading BOM included). */
  | { ok: true; events: Record<string, unknown>[]; text: string }
  /** `path`: where in the body the failure is (`/body`, or `/body/3` for the fourth event). */
  | { ok: false; code: "invalid_json" | "validation_failed"; detail: string; path: string };

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

/** A provider event in Herald's canonical shape. */
export interface CanonicalEvent {
  type: CanonicalEventType;
  /** When it happened (the provider's timestamp), else when the delivery was received. */
  eventAt: Date;
  /**
   * `sg_event_id` (its hash, whole, when too long to index), else a hash of the event's natural fields: the
   * same event always gets the same key.
   */
  dedupeKey: string;
  providerEventId: string | null;
  /** `sg_message_id` (X-Message-Id + "." + suffix), or the id inside `smtp-id` (see `linkCandidates`). */
  providerMessageId: string | null;
  /** Herald's own message id from the custom argument `herald_message_id`. */
  heraldMessageId: string | null;
  recipient: string | null;
  url: string | null;
  ip: string | null;
  userAgent: string | null;
  reason: string | null;
  bounceClassification: string | null;
  machineOpen: boolean | null;
  groupId: number | null;
  payload: Record<string, unknown>;
}

/** SendGrid's own event names: the canonical types except the two Herald derives (`blocked`, `unknown`). */
const known = new Set<string>(canonicalEventTypes.filter((t) => t !== "blocked" && t !== "unknown"));

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

/**
 * Linking by provider message id (API.md): a registered provider message id links an event whose message id
 * equals it or starts with it followed by "." — SendGrid's `sg_message_id` is the `X-Message-Id` the send
 * returned, ".", and a suffix, and a legacy `X-Message-Id` has dots of its own
 * (`14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0` belongs to `14c5d75ce93.dfd.64b469`). Where several
 * registered ids link one event (`a` and `a.b` both link `a.b.c`), the longest wins. The rule is these
 * functions; the statements that link take what they compute as parameters, and look it up through indexes.
 */

/** The longest provider message id the messages API takes (`POST /api/v1/messages`). */
export const maxProviderMessageIdLength = 500;

/**
 * The lengths of the registered ids that could link an event with `messageId`, longest first: the whole id,
 * then each prefix ending just before a "." — only as long as a registered id can be.
 */
export function linkPrefixLengths(messageId: string): number[] {
  const lengths = messageId.length <= maxProviderMessageIdLength ? [messageId.length] : [];
  for (
    let dot = messageId.lastIndexOf(".", maxProviderMessageIdLength);
    dot > 0;
    dot = messageId.lastIndexOf(".", dot - 1)
  )
    lengths.push(dot);
  return lengths;
}

/** The registered ids that could link an event with `messageId`, longest first (see `linkPrefixLengths`). */
export const linkCandidates = (messageId: string): string[] =>
  linkPrefixLengths(messageId).map((length) => messageId.slice(0, length));

/** Of the `registered` ids, the one that links an event with `messageId` (the longest), if any. */
export const linkingId = (messageId: string, registered: ReadonlySet<string>): string | undefined =>
  linkCandidates(messageId).find((candidate) => registered.has(candidate));

/**
 * What a registered id shares with every message id it links: the text before the first ".". Unlinked
 * events are indexed by it (`message_events_unlinked_idx`, `split_part(provider_message_id, '.', 1)`), and
 * their link locks taken on it.
 */
export function messageIdRoot(messageId: string): string {
  const dot = messageId.indexOf(".");
  return dot === -1 ? messageId : messageId.slice(0, dot);
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
