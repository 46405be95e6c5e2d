import { createHash, createHmac } from "node:crypto";
import { normalizeEmail } from "../domain/address.js";
import { secretsEqual } from "../domain/apiKey.js";
import { linkCandidates, messageIdRoot } from "../domain/messageIds.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
import { isUuid } from "../domain/uuid.js";
import { HeraldError } from "../errors.js";
import { deliveryAnswer } from "./answer.js";
import { indexable, parseJsonEvent, plausibleTime, str } from "./jsonEventBody.js";
import { rawTypeField } from "./rawType.js";
import { missingFields } from "./settings.js";
import type {
  AuthContext,
  CanonicalEvent,
  IncomingRequest,
  ParseResult,
  ProviderModule,
  VerificationSettings,
} from "./types.js";

/**
 * Resend's webhooks: one JSON event per request (`type`, `created_at`, `data`), signed the Svix way
 * (Standard Webhooks with `svix-` headers). Pure functions; nothing here touches the database.
 */

export const idHeader = "svix-id";
export const timestampHeader = "svix-timestamp";
export const signatureHeader = "svix-signature";
/** Standard Webhooks' own names for the same three headers, taken when the `svix-` ones are absent. */
const standardNames: Readonly<Record<string, string>> = {
  [idHeader]: "webhook-id",
  [timestampHeader]: "webhook-timestamp",
  [signatureHeader]: "webhook-signature",
};

/** How far a signature's timestamp may be from now, either way (Standard Webhooks' default). */
export const timestampToleranceMs = 5 * 60_000;

const header = (headers: IncomingRequest["headers"], name: string) => {
  const value = headers[name] ?? headers[standardNames[name]!];
  return Array.isArray(value) ? value[0] : value;
};

/** A `whsec_…` secret's key bytes (the base64 after the prefix), or undefined when it is not one. */
export function signingKey(secret: string): Buffer | undefined {
  const base64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined;
  const key = Buffer.from(base64, "base64");
  return key.length >= 16 ? key : undefined;
}

/** The signature Resend sends: base64 HMAC-SHA256 over `id.timestamp.body` with the secret's key bytes. */
export const expectedSignature = (key: Buffer, id: string, timestamp: string, body: Buffer): string =>
  createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64");

/**
 * Whether one of the signatures (space-separated `v1,<base64>`: several during a secret's rotation) is the
 * body's. Other versions (`v1a,` — asymmetric) are not Resend's and never match.
 */
export function signatureMatches(key: Buffer, id: string, timestamp: string, body: Buffer, header: string) {
  const expected = expectedSignature(key, id, timestamp, body);
  let matched = false;
  for (const entry of header.split(" ").slice(0, 10)) {
    const comma = entry.indexOf(",");
    if (comma === -1 || entry.slice(0, comma) !== "v1") continue;
    // Every entry compared, matched or not: the time taken does not tell which one matched.
    if (secretsEqual(entry.slice(comma + 1), expected)) matched = true;
  }
  return matched;
}

/**
 * A source with a secret takes only requests signed with it, over the exact bytes, with a timestamp within
 * five minutes of now (a captured request cannot be replayed later; within the window, a replay is the same
 * `svix-id`, which stores nothing new). The id is not recorded as used: Resend retries with the same id.
 */
function authenticate(
  request: IncomingRequest,
  settings: VerificationSettings | null,
  context: AuthContext,
): HeraldError | undefined {
  const secret = settings?.secret;
  if (!secret) return undefined;
  const id = header(request.headers, idHeader);
  const timestamp = header(request.headers, timestampHeader);
  const signature = header(request.headers, signatureHeader);
  if (!id || !timestamp || !signature)
    return new HeraldError(
      "invalid_signature",
      `Signed source: send ${idHeader}, ${timestampHeader} and ${signatureHeader}`,
    );
  const seconds = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
  if (!Number.isFinite(seconds) || Math.abs(context.now().getTime() - seconds * 1000) > timestampToleranceMs)
    return new HeraldError(
      "invalid_signature",
      `${timestampHeader} is more than five minutes away from now (a replayed or delayed request, or a clock off)`,
    );
  const key = signingKey(secret);
  if (!key || !signatureMatches(key, id, timestamp, request.body, signature))
    return new HeraldError("invalid_signature", "The signature does not match the body, id and timestamp");
  return undefined;
}

/**
 * The delivery's id (`svix-id`, the same on every retry), carried by the raw event `parse` made for
 * `normalize` under a symbol: not part of the payload (JSON never sees it), which stays the body as sent.
 */
const deliveryId = Symbol("resend.svix-id");
type RawEvent = Record<string, unknown> & { [deliveryId]?: string };

/**
 * The body's one event, with the request's `svix-id` (from the request at the door, from the archived
 * headers when processed: the same value).
 */
export function parseEvent(body: Buffer, headers?: IncomingRequest["headers"]): ParseResult {
  const parsed = parseJsonEvent(body, "Resend");
  const id = headers ? header(headers, idHeader) : undefined;
  if (parsed.ok && id) (parsed.events[0] as RawEvent)[deliveryId] = id;
  return parsed;
}

/**
 * Resend's email events in Herald's email vocabulary (SendGrid's, see domain/messageStatus.ts):
 * `email.sent` is the send accepted (`processed`); `email.failed` (Resend could not send it) and
 * `email.suppressed` (not sent: the address is on Resend's suppression list) are `dropped`;
 * `email.scheduled` is a send waiting for its time (`scheduled`, ranked before `processed`).
 * `email.received` is inbound mail, not an event of a message Herald sent: kept as `unknown`, as are
 * `domain.*` and `contact.*` events and any type Resend adds.
 */
export const eventTypes: Readonly<Record<string, CanonicalEventType>> = {
  "email.sent": "processed",
  "email.scheduled": "scheduled",
  "email.delivered": "delivered",
  "email.delivery_delayed": "deferred",
  "email.bounced": "bounce",
  "email.complained": "spamreport",
  "email.opened": "open",
  "email.clicked": "click",
  "email.failed": "dropped",
  "email.suppressed": "dropped",
};

const objectOf = (v: unknown): Record<string, unknown> | null =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

function canonicalType(raw: Record<string, unknown>): CanonicalEventType {
  const type =
    typeof raw.type === "string" && Object.hasOwn(eventTypes, raw.type) ? eventTypes[raw.type]! : null;
  if (type === null) return "unknown";
  // A bounce Resend calls transient (a soft bounce) is not a permanent failure.
  if (type === "bounce" && objectOf(objectOf(raw.data)?.bounce)?.type === "Transient") return "deferred";
  return type;
}

/** When an event happened: its `created_at`, if plausible; else when it was received. */
export const eventTime = (raw: Record<string, unknown>, receivedAt: Date): Date =>
  plausibleTime(raw.created_at, receivedAt);

/** The one recipient of the email (`data.to`, a list or an address); null for none or several. */
function recipientOf(data: Record<string, unknown> | null): string | null {
  const to = data?.to;
  if (typeof to === "string") return str(to);
  return Array.isArray(to) && to.length === 1 ? str(to[0]) : null;
}

/** A tag's value, from `data.tags` as an object or as a list of `{ name, value }`. */
function tag(data: Record<string, unknown> | null, name: string): string | null {
  const tags = data?.tags;
  if (Array.isArray(tags)) return str(tags.map(objectOf).find((t) => t?.name === name)?.value);
  return str(objectOf(tags)?.[name]);
}

/** A delivery id short and plain enough to be a key as it is. */
const plainId = /^[\x21-\x7e]{1,200}$/;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * An event in the canonical shape, keyed by its delivery's `svix-id` (Resend's retries repeat it). A request
 * that came without one (an unsigned source) is keyed by its natural fields instead: the type, time and
 * email, and a click's link and time.
 */
export function normalizeEvent(raw: RawEvent, receivedAt: Date): CanonicalEvent {
  const data = objectOf(raw.data);
  const click = objectOf(data?.click);
  const bounce = objectOf(data?.bounce);
  const messageId = str(data?.email_id);
  const recipient = recipientOf(data);
  const svixId = raw[deliveryId];
  const dedupeKey =
    svixId === undefined
      ? `h:${sha256(
          JSON.stringify([
            raw.type ?? null,
            raw.created_at ?? null,
            messageId,
            click?.link ?? null,
            click?.timestamp ?? null,
          ]),
        )}`
      : plainId.test(svixId)
        ? svixId
        : `k:${sha256(svixId)}`;
  const custom = tag(data, "herald_message_id");
  return {
    type: canonicalType(raw),
    eventAt: eventTime(raw, receivedAt),
    dedupeKey,
    providerEventId: svixId !== undefined && plainId.test(svixId) ? svixId : null,
    providerMessageId: messageId === null || indexable(messageIdRoot(messageId)) === null ? null : messageId,
    heraldMessageId: custom && isUuid(custom) ? custom.toLowerCase() : null,
    recipient: indexable(recipient === null ? null : normalizeEmail(recipient)),
    url: str(click?.link),
    ip: str(click?.ipAddress),
    userAgent: str(click?.userAgent),
    reason:
      str(bounce?.message) ?? str(objectOf(data?.failed)?.reason) ?? str(objectOf(data?.suppressed)?.message),
    bounceClassification: bounce
      ? [str(bounce.type), str(bounce.subType)].filter(Boolean).join("/") || null
      : null,
    machineOpen: null,
    groupId: null,
    payload: raw,
  };
}

/** Resend's webhooks (an email provider): one JSON event per request, signed the Svix way. */
export const resend: ProviderModule = {
  name: "resend",
  channel: "email",
  verificationFields: ["secret"],
  validateVerification(settings) {
    const missing = missingFields("resend", this.verificationFields, settings);
    if (missing) return missing;
    // A secret that is not one would turn every delivery into a 401 that Resend retries for hours.
    if (!signingKey(settings.secret!))
      return {
        detail: "secret is not a webhook signing secret (whsec_ followed by base64), as Resend shows it",
        errors: [{ field: "secret", message: "is not a whsec_ signing secret" }],
      };
    return undefined;
  },
  keptHeaders: [idHeader, timestampHeader, signatureHeader, "webhook-id"],
  authenticate,
  parse: parseEvent,
  eventsAreBodyItems: false,
  eventTime,
  normalize: normalizeEvent,
  rawType: rawTypeField("type"),
  linkCandidates,
  answer: deliveryAnswer,
};
