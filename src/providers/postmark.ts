import { createHash } from "node:crypto";
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
import type { CanonicalEvent, IncomingRequest, ProviderModule, VerificationSettings } from "./types.js";

/**
 * Postmark's message webhooks: one JSON event per request, its kind in `RecordType` (Delivery, Bounce,
 * SpamComplaint, Open, Click, SubscriptionChange). Postmark does not sign them: a source is verified by the
 * HTTP Basic credentials put in the webhook's URL (`https://user:pass@…`), which Postmark sends as an
 * `Authorization` header. Pure functions; nothing here touches the database.
 */

const header = (headers: IncomingRequest["headers"], name: string) => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** `Authorization: Basic base64(user:password)` read, or undefined when it is not that. */
export function basicCredentials(
  value: string | undefined,
): { username: string; password: string } | undefined {
  const match = value ? /^basic[ \t]+([A-Za-z0-9+/=_-]+)[ \t]*$/i.exec(value) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon === -1 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * A source with credentials takes only requests that present both. Both are compared, in constant time,
 * whatever the first gives: the answer does not tell which one was wrong, nor how soon.
 */
function authenticate(
  request: IncomingRequest,
  settings: VerificationSettings | null,
): HeraldError | undefined {
  const username = settings?.username;
  const password = settings?.password;
  if (!username || !password) return undefined;
  const presented = basicCredentials(header(request.headers, "authorization"));
  if (!presented)
    return new HeraldError(
      "invalid_signature",
      "Source with credentials: send them by HTTP Basic auth (put them in the webhook URL Postmark calls)",
    );
  const usernameMatches = secretsEqual(presented.username, username);
  const passwordMatches = secretsEqual(presented.password, password);
  return usernameMatches && passwordMatches
    ? undefined
    : new HeraldError("invalid_signature", "The Basic auth credentials do not match the source's");
}

/**
 * Postmark's bounce types (its `TypeCode`, with the `Type` name it goes with) and what each is in Herald's
 * email vocabulary (SendGrid's: see domain/messageStatus.ts):
 *
 * - `bounce`: the address does not take mail and will not (a permanent failure; the address is suppressed).
 * - `blocked`: the receiving side refused this message or sender by policy (spam filtering, a block list,
 *   DMARC, a virus) — not proof that the address is bad.
 * - `deferred`: a temporary failure, or a notice that says the message reached the mailbox's side (an
 *   auto-reply, a challenge to verify the sender, an address change): nothing Herald should suppress for,
 *   and a late one never undoes a delivery (its rank is below `delivered`).
 * - `dropped`: Postmark did not send it at all (an unconfirmed sender signature, an SMTP API error, a
 *   template that failed to render).
 * - `spamreport`, `unsubscribe`: what they say.
 * - `unknown`: nothing Herald can act on (Postmark's own "Unknown", an open relay test, an inbound error,
 *   a subscribe request); the event is kept with its payload.
 *
 * Each event also keeps Postmark's `Type` as its `bounce_classification`.
 */
export const bounceTypes: Readonly<Record<number, { name: string; type: CanonicalEventType }>> = {
  1: { name: "HardBounce", type: "bounce" },
  2: { name: "Transient", type: "deferred" },
  16: { name: "Unsubscribe", type: "unsubscribe" },
  32: { name: "Subscribe", type: "unknown" },
  64: { name: "AutoResponder", type: "deferred" },
  128: { name: "AddressChange", type: "deferred" },
  256: { name: "DnsError", type: "deferred" },
  512: { name: "SpamNotification", type: "blocked" },
  1024: { name: "OpenRelayTest", type: "unknown" },
  2048: { name: "Unknown", type: "unknown" },
  4096: { name: "SoftBounce", type: "deferred" },
  8192: { name: "VirusNotification", type: "blocked" },
  16384: { name: "ChallengeVerification", type: "deferred" },
  100000: { name: "BadEmailAddress", type: "bounce" },
  100001: { name: "SpamComplaint", type: "spamreport" },
  100002: { name: "ManuallyDeactivated", type: "bounce" },
  100003: { name: "Unconfirmed", type: "dropped" },
  100006: { name: "Blocked", type: "blocked" },
  100007: { name: "SMTPApiError", type: "dropped" },
  100008: { name: "InboundError", type: "unknown" },
  100009: { name: "DMARCPolicy", type: "blocked" },
  100010: { name: "TemplateRenderingFailed", type: "dropped" },
};

const bounceTypesByName = new Map(Object.values(bounceTypes).map((b) => [b.name, b.type]));

/** A bounce's type: by its `TypeCode`, else by its `Type` name; `unknown` when neither is Postmark's. */
function bounceType(raw: Record<string, unknown>): CanonicalEventType {
  const code = raw.TypeCode;
  if (typeof code === "number" && Object.hasOwn(bounceTypes, code)) return bounceTypes[code]!.type;
  return (typeof raw.Type === "string" && bounceTypesByName.get(raw.Type)) || "unknown";
}

/**
 * A subscription change: Postmark stopped sending to the address (`SuppressSending: true`) because of a hard
 * bounce, a spam complaint, or an unsubscribe or manual suppression (`SuppressionReason`), each suppressing
 * it in Herald for the same reason; or it lifted that (`false`): a resubscribe, of no group (so it lifts no
 * group suppression).
 */
function subscriptionChangeType(raw: Record<string, unknown>): CanonicalEventType {
  if (raw.SuppressSending === false) return "group_resubscribe";
  if (raw.SuppressSending !== true) return "unknown";
  if (raw.SuppressionReason === "HardBounce") return "bounce";
  if (raw.SuppressionReason === "SpamComplaint") return "spamreport";
  return "unsubscribe";
}

function canonicalType(raw: Record<string, unknown>): CanonicalEventType {
  switch (raw.RecordType) {
    case "Delivery":
      return "delivered";
    case "Bounce":
      return bounceType(raw);
    case "SpamComplaint":
      return "spamreport";
    case "Open":
      return "open";
    case "Click":
      return "click";
    case "SubscriptionChange":
      return subscriptionChangeType(raw);
    default:
      return "unknown";
  }
}

/** Each record type's time field (ISO 8601). */
const timeFields: Readonly<Record<string, string>> = {
  Delivery: "DeliveredAt",
  Bounce: "BouncedAt",
  SpamComplaint: "BouncedAt",
  Open: "ReceivedAt",
  Click: "ReceivedAt",
  SubscriptionChange: "ChangedAt",
};

const timeOf = (raw: Record<string, unknown>) =>
  typeof raw.RecordType === "string" && Object.hasOwn(timeFields, raw.RecordType)
    ? raw[timeFields[raw.RecordType]!]
    : undefined;

/** When an event happened: its record type's time, if plausible; else when it was received. */
export const eventTime = (raw: Record<string, unknown>, receivedAt: Date): Date =>
  plausibleTime(timeOf(raw), receivedAt);

/** The address an event is about: `Recipient`, or a bounce's and complaint's `Email`. */
const recipientOf = (raw: Record<string, unknown>) => str(raw.Recipient) ?? str(raw.Email);

/** Postmark's id of a bounce or complaint (`ID`, a number); deliveries, opens, clicks and changes have none. */
function eventIdOf(raw: Record<string, unknown>): string | null {
  const id = raw.ID;
  if (typeof id === "number" && Number.isSafeInteger(id)) return String(id);
  return typeof id === "string" && /^[0-9A-Za-z-]{1,100}$/.test(id) ? id : null;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

const objectOf = (v: unknown): Record<string, unknown> | null =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;

/**
 * An event in the canonical shape. Keyed by Postmark's `ID` where it has one; else by its natural fields —
 * the record type, message, time, recipient, and what tells two of them apart (a click's link, a change's
 * direction): a retried request is the same event, a second open or click at another time another one.
 */
export function normalizeEvent(raw: Record<string, unknown>, receivedAt: Date): CanonicalEvent {
  const type = canonicalType(raw);
  const messageId = str(raw.MessageID);
  const recipient = recipientOf(raw);
  const url = str(raw.OriginalLink);
  const providerEventId = eventIdOf(raw);
  const dedupeKey =
    providerEventId ??
    `h:${sha256(
      JSON.stringify([
        raw.RecordType ?? null,
        messageId,
        timeOf(raw) ?? null,
        recipient,
        url,
        raw.SuppressSending ?? null,
      ]),
    )}`;
  const custom = str(objectOf(raw.Metadata)?.herald_message_id);
  const isBounce = raw.RecordType === "Bounce" || raw.RecordType === "SpamComplaint";
  return {
    type,
    eventAt: eventTime(raw, receivedAt),
    dedupeKey,
    providerEventId,
    providerMessageId: messageId === null || indexable(messageIdRoot(messageId)) === null ? null : messageId,
    heraldMessageId: custom && isUuid(custom) ? custom.toLowerCase() : null,
    recipient: indexable(recipient === null ? null : normalizeEmail(recipient)),
    url,
    ip: str(objectOf(raw.Geo)?.IP),
    userAgent: str(raw.UserAgent),
    reason: isBounce
      ? (str(raw.Details) ?? str(raw.Description))
      : (str(raw.Details) ?? str(raw.SuppressionReason)),
    bounceClassification: isBounce ? str(raw.Type) : null,
    // Postmark's open records carry no sign of a machine open (a privacy proxy, a scanner): not known.
    machineOpen: null,
    groupId: null,
    payload: raw,
  };
}

/** Postmark's message webhooks (an email provider): one JSON event per request, HTTP Basic credentials. */
export const postmark: ProviderModule = {
  name: "postmark",
  channel: "email",
  verificationFields: ["username", "password"],
  validateVerification(settings) {
    const missing = missingFields("postmark", this.verificationFields, settings);
    if (missing) return missing;
    // A username with ":" cannot be sent by Basic auth: every delivery would be refused.
    if (settings.username!.includes(":"))
      return {
        detail: "username cannot hold a colon (HTTP Basic auth separates it from the password with one)",
        errors: [{ field: "username", message: "holds a colon" }],
      };
    return undefined;
  },
  // The credentials are never kept: the Authorization header is a secret.
  keptHeaders: [],
  authenticate,
  parse: (body) => parseJsonEvent(body, "Postmark"),
  eventsAreBodyItems: false,
  eventTime,
  normalize: normalizeEvent,
  rawType: rawTypeField("RecordType"),
  linkCandidates,
  answer: deliveryAnswer,
};
