import { createHash, createHmac } from "node:crypto";
import { normalizeEmail } from "../domain/address.js";
import { secretsEqual } from "../domain/apiKey.js";
import { unstorableEscape, unstorableNumber } from "../domain/jsonbText.js";
import { defaultMaxJsonDepth, jsonPointer, tooDeepAt } from "../domain/jsonDepth.js";
import { linkCandidates, maxProviderMessageIdLength, messageIdOf } from "../domain/messageIds.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
import { isUuid } from "../domain/uuid.js";
import { HeraldError } from "../errors.js";
import { deliveryAnswer } from "./answer.js";
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
 * Mailgun's webhooks: one JSON object per request, `{ "signature": { timestamp, token, signature },
 * "event-data": { … } }`. The signature is over the timestamp and token only (the event itself is not signed),
 * so a captured request could be sent again at will: a signed source refuses a timestamp outside
 * `timestampToleranceMs` of its clock and a token it has seen before (`AuthContext.firstUse`). Pure functions
 * but for that record; nothing here touches the database.
 *
 * Mailgun's events (documentation.mailgun.com events/event-types) become these canonical types; those marked
 * (S) suppress the recipient (messages/suppressions.ts):
 *
 *   accepted → processed        rejected (Mailgun refused to send) → dropped        delivered → delivered
 *   opened → open               clicked → click                                      unsubscribed → unsubscribe (S)
 *   complained → spamreport (S) stored, and anything else → unknown (payload kept)
 *   failed, severity temporary (Mailgun tries again) → deferred
 *   failed, severity permanent (or none), by reason:
 *     suppress-bounce, suppress-unsubscribe, suppress-complaint (not sent: on Mailgun's lists) → dropped
 *     old (given up after its retries) → dropped
 *     espblock (refused by the receiving provider's policy) → blocked
 *     bounce, generic, and any other → bounce (S)
 */

/** How far a signature's timestamp may be from the receiver's clock, either way. */
export const timestampToleranceMs = 5 * 60 * 1000;

/**
 * How much longer than the tolerance a token is remembered: the record expires by the database's clock, the
 * timestamp is checked by each process's own, and a process whose clock lags would otherwise take a replay
 * the record has just forgotten. Clocks that differ by up to this are safe.
 */
export const replayRecordMarginMs = 60 * 1000;

/** Mailgun's tokens are 50 characters; anything much longer is not one (and is not worth recording). */
const maxTokenLength = 200;

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const invalid = (detail: string, path = "/body"): ParseResult => ({
  ok: false,
  code: "validation_failed",
  detail,
  path,
});

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** The body as JSON (a leading BOM allowed), or undefined when it is not UTF-8 JSON. */
function decode(body: Buffer): { value: unknown; text: string } | undefined {
  try {
    const text = utf8.decode(body);
    return { value: JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text), text };
  } catch {
    return undefined;
  }
}

/**
 * A request's body: a JSON object whose `event-data` object is the one raw event (the signature block is
 * authentication, not event: it stays in the archived body only). Refused as sendgrid.ts refuses a batch
 * that PostgreSQL could not store as jsonb.
 */
export function parseEvent(body: Buffer): ParseResult {
  const decoded = decode(body);
  if (!decoded)
    return { ok: false, code: "invalid_json", detail: "The body is not valid UTF-8 JSON", path: "/body" };
  const { value, text } = decoded;
  if (!isObject(value))
    return invalid('The body must be a JSON object holding "signature" and "event-data", as Mailgun sends');
  const event = value["event-data"];
  if (!isObject(event)) return invalid('"event-data" must be a JSON object (the event)', "/body/event-data");
  if (unstorableEscape(text))
    return invalid("The body holds a \\u0000 escape or an unpaired surrogate escape, which cannot be stored");
  if (unstorableNumber(text))
    return invalid("The body holds a number beyond PostgreSQL's numeric range, which cannot be stored");
  const deep = tooDeepAt(event, defaultMaxJsonDepth);
  if (deep)
    return invalid(
      `The event nests deeper than ${defaultMaxJsonDepth} levels`,
      jsonPointer("/body/event-data", deep),
    );
  return { ok: true, events: [event], text };
}

// ---------------------------------------------------------------------------------------------------------
// Authenticating
// ---------------------------------------------------------------------------------------------------------

/** The signature Mailgun computes: hex HMAC-SHA256, keyed with the webhook signing key, of timestamp + token. */
export const expectedSignature = (signingKey: string, timestamp: string, token: string): string =>
  createHmac("sha256", signingKey)
    .update(timestamp + token, "utf8")
    .digest("hex");

/** The signature block of a body, as text, or why it is unusable. */
function signatureBlock(
  body: Buffer,
): { timestamp: string; token: string; signatures: string[] } | { refused: string } {
  const decoded = decode(body);
  const block = decoded && isObject(decoded.value) ? decoded.value.signature : undefined;
  if (!isObject(block))
    return {
      refused: 'Signed source: the body must hold Mailgun\'s "signature" {timestamp, token, signature}',
    };
  const ts = block.timestamp;
  const timestamp =
    typeof ts === "string" && /^\d{1,12}$/.test(ts)
      ? ts
      : typeof ts === "number" && Number.isSafeInteger(ts) && ts >= 0
        ? String(ts)
        : undefined;
  const token = block.token;
  if (timestamp === undefined) return { refused: "signature.timestamp must be Unix seconds" };
  if (typeof token !== "string" || token.length === 0 || token.length > maxTokenLength)
    return { refused: `signature.token must be a string of 1 to ${maxTokenLength} characters` };
  // A subaccount's events also carry `parent-signature`, by the primary account's key: either may match.
  const signatures = [block.signature, block["parent-signature"]].filter(
    (s): s is string => typeof s === "string" && s.length > 0 && s.length <= 200,
  );
  if (signatures.length === 0) return { refused: "signature.signature must be the hex HMAC" };
  return { timestamp, token, signatures };
}

/**
 * A signed source's check, in order: the HMAC (constant time), the timestamp within the tolerance of
 * `context.now()`, then the token's first use — recorded only once the signature holds, so forged requests
 * cannot fill the record, and kept until the timestamp leaves the tolerance, with a margin for clocks that
 * differ (after that the timestamp alone refuses it).
 */
async function authenticate(
  request: IncomingRequest,
  settings: VerificationSettings | null,
  context: AuthContext,
): Promise<HeraldError | undefined> {
  const signingKey = settings?.signing_key;
  if (!signingKey) return undefined;
  const block = signatureBlock(request.body);
  if ("refused" in block) return new HeraldError("invalid_signature", block.refused);
  const expected = expectedSignature(signingKey, block.timestamp, block.token);
  // Both compared (no early exit), so the time taken says nothing about which one was close.
  const matches = block.signatures.map((s) => secretsEqual(s.toLowerCase(), expected));
  if (!matches.includes(true))
    return new HeraldError(
      "invalid_signature",
      "The signature does not match the timestamp and token (check the source's signing_key: Mailgun's " +
        "HTTP webhook signing key, not the API key)",
    );
  const signedAt = Number(block.timestamp) * 1000;
  const skew = context.now().getTime() - signedAt;
  if (Math.abs(skew) > timestampToleranceMs)
    return new HeraldError(
      "invalid_signature",
      `The signature's timestamp is ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? "old" : "in the future"}: ` +
        `more than ${timestampToleranceMs / 1000} s from this server's clock (a replay, or a clock to fix)`,
    );
  if (
    !(await context.firstUse(block.token, new Date(signedAt + timestampToleranceMs + replayRecordMarginMs)))
  )
    return new HeraldError(
      "invalid_signature",
      "The signature's token was used before: a request is taken once (a replay)",
    );
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Classifying and normalizing
// ---------------------------------------------------------------------------------------------------------

const str = (v: unknown): string | null => (typeof v === "string" && v.length > 0 ? v.slice(0, 2000) : null);

const field = (v: unknown, name: string): unknown => (isObject(v) ? v[name] : undefined);

// Values Herald indexes must fit a btree entry (see sendgrid.ts): a longer one stays in the payload.
const maxIndexedBytes = 2000;
const indexable = (value: string | null) =>
  value !== null && Buffer.byteLength(value) <= maxIndexedBytes ? value : null;

/** Mailgun's event names that map one to one. */
const simpleTypes: Readonly<Record<string, CanonicalEventType>> = {
  accepted: "processed",
  rejected: "dropped",
  delivered: "delivered",
  opened: "open",
  clicked: "click",
  unsubscribed: "unsubscribe",
  complained: "spamreport",
};

/**
 * A permanent failure by its `reason` (Mailgun's classification). A hard bounce (`bounce`, and any reason
 * not listed: Mailgun's permanent failures are otherwise hard bounces) is `bounce`, and suppresses the
 * address. Not tried because the address is on Mailgun's own bounce, unsubscribe or complaint list
 * (`suppress-*`), or abandoned after its retries (`old`): `dropped` — the address was not proven bad again.
 * Refused by the receiving provider for its policy or the sender's reputation (`espblock`): `blocked`.
 */
const permanentFailures: Readonly<Record<string, CanonicalEventType>> = {
  "suppress-bounce": "dropped",
  "suppress-unsubscribe": "dropped",
  "suppress-complaint": "dropped",
  old: "dropped",
  espblock: "blocked",
};

/**
 * An event's canonical type. `failed` with `severity` `temporary` is a deferral (Mailgun tries again);
 * `permanent` (or none) is read by its reason (`permanentFailures`). `stored` (an inbound message kept by a
 * route) and anything else says nothing about delivery: `unknown`, kept with its payload.
 */
export function canonicalType(event: Record<string, unknown>): CanonicalEventType {
  const name = event.event;
  if (typeof name !== "string") return "unknown";
  if (Object.hasOwn(simpleTypes, name)) return simpleTypes[name]!;
  if (name !== "failed") return "unknown";
  if (event.severity === "temporary") return "deferred";
  const reason = typeof event.reason === "string" ? event.reason : "";
  return Object.hasOwn(permanentFailures, reason) ? permanentFailures[reason]! : "bounce";
}

/** An event's timestamp in Unix seconds (Mailgun sends a number with a fraction), if it is one. */
function secondsOf(event: Record<string, unknown>): number | undefined {
  const ts = event.timestamp;
  const seconds =
    typeof ts === "number" ? ts : typeof ts === "string" && /^\d{9,11}(\.\d+)?$/.test(ts) ? Number(ts) : NaN;
  return Number.isFinite(seconds) ? seconds : undefined;
}

/** When an event happened: its timestamp, if plausible (2001 to a day after receipt); else its receipt. */
export function eventTime(event: Record<string, unknown>, receivedAt: Date): Date {
  const seconds = secondsOf(event);
  const latest = receivedAt.getTime() / 1000 + 86_400;
  return seconds !== undefined && seconds > 1e9 && seconds < latest ? new Date(seconds * 1000) : receivedAt;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * The event's key. Mailgun's `id` is unique only within a day, so it is keyed with the UTC day of the event's
 * own timestamp: a retry carries the very same event (same id, same timestamp) and meets its first copy,
 * while an id Mailgun uses again on another day is another event. The day rather than the exact timestamp,
 * so that a retry whose timestamp were written with other digits still meets it. Without an id: a hash of
 * the event's natural fields.
 */
function dedupeKeyOf(event: Record<string, unknown>, messageId: string | null): string {
  const id = str(event.id);
  const seconds = secondsOf(event);
  const day =
    seconds !== undefined && seconds > 0 && seconds < 1e11
      ? new Date(seconds * 1000).toISOString().slice(0, 10)
      : JSON.stringify(event.timestamp ?? null);
  if (id) {
    const key = `${id}@${day}`;
    return indexable(key) ?? `k:${sha256(key)}`;
  }
  return `h:${sha256(
    JSON.stringify([
      messageId,
      event.event ?? null,
      event.timestamp ?? null,
      event.recipient ?? null,
      event.url ?? null,
      event.severity ?? null,
      event.reason ?? null,
    ]),
  )}`;
}

/** A bare address, or one in angle brackets (`Name <a@b>`), of a header holding exactly one. */
function singleAddress(header: string | null): string | null {
  if (header === null) return null;
  const bracketed = header.match(/<([^<>\s,]+@[^<>\s,]+)>/g);
  if (bracketed?.length === 1) return bracketed[0]!.slice(1, -1);
  return /^\s*[^<>\s,@]+@[^<>\s,@]+\s*$/.test(header) ? header.trim() : null;
}

/** Why delivery failed or was refused, as the receiving server or Mailgun said it. */
function reasonOf(event: Record<string, unknown>): string | null {
  const status = event["delivery-status"];
  const code = field(status, "code");
  const text = str(field(status, "message")) ?? str(field(status, "description"));
  const codeText =
    typeof code === "number" || (typeof code === "string" && code !== "") ? String(code) : null;
  if (text) return codeText && !text.startsWith(codeText) ? `${codeText} ${text}`.slice(0, 2000) : text;
  return str(field(event.reject, "reason")) ?? str(field(event.reject, "description")) ?? codeText;
}

/**
 * The message id: `message.headers.message-id`, which Mailgun's events give without the angle brackets its
 * send API puts around the `id` it returns — stored without them either way (register the id bare).
 */
function messageIdOfEvent(event: Record<string, unknown>): string | null {
  const raw = str(field(field(event.message, "headers"), "message-id"));
  const bare = messageIdOf(raw) ?? null;
  return bare !== null && bare.length <= maxProviderMessageIdLength ? bare : null;
}

export function normalizeEvent(event: Record<string, unknown>, receivedAt: Date): CanonicalEvent {
  const type = canonicalType(event);
  const messageId = messageIdOfEvent(event);
  const recipient = str(event.recipient) ?? singleAddress(str(field(field(event.message, "headers"), "to")));
  const custom = str(field(event["user-variables"], "herald_message_id"));
  const failed = event.event === "failed";
  return {
    type,
    eventAt: eventTime(event, receivedAt),
    dedupeKey: dedupeKeyOf(event, messageId),
    providerEventId: indexable(str(event.id)),
    providerMessageId: messageId,
    heraldMessageId: custom && isUuid(custom) ? custom.toLowerCase() : null,
    recipient: indexable(recipient === null ? null : normalizeEmail(recipient)),
    url: str(event.url),
    ip: str(event.ip),
    userAgent: str(field(event["client-info"], "user-agent")),
    reason: failed || event.event === "rejected" ? reasonOf(event) : null,
    // Mailgun's own classification of a failure: its severity and reason (`permanent/suppress-bounce`).
    bounceClassification: failed
      ? [str(event.severity), str(event.reason)].filter((s) => s !== null).join("/") || null
      : null,
    machineOpen: null,
    groupId: null,
    payload: event,
  };
}

/** Mailgun's webhooks (an email provider): one event per JSON request, signed with the webhook signing key. */
export const mailgun: ProviderModule = {
  name: "mailgun",
  channel: "email",
  verificationFields: ["signing_key"],
  validateVerification(settings) {
    return missingFields("mailgun", this.verificationFields, settings);
  },
  // The signature is in the body (kept whole): no header of Mailgun's is worth keeping.
  keptHeaders: [],
  authenticate,
  parse: parseEvent,
  eventsAreBodyItems: false,
  eventTime,
  normalize: normalizeEvent,
  rawType: rawTypeField("event"),
  // Its ids hold dots (`20240101120000.1.ABC@mg.example.com`): the shared rule's prefixes could only link an
  // id registered as such a prefix, which Mailgun never returns (storeEvents.ts applies that same rule).
  linkCandidates,
  answer: deliveryAnswer,
};
