import { createHash } from "node:crypto";
import { normalizePhone } from "../domain/address.js";
import { maxProviderMessageIdLength } from "../domain/messageIds.js";
import { type CanonicalEventType, smsEventTypes } from "../domain/messageStatus.js";
import { type SmsKeyword, type SmsKeywordAction, smsKeyword } from "../domain/optOut.js";
import { HeraldError } from "../errors.js";
import { rawTypeField } from "./rawType.js";
import { missingFields } from "./settings.js";
import { formEntries } from "./twilioForm.js";
import { verifySignature } from "./twilioSignature.js";
import type {
  CanonicalEvent,
  IncomingRequest,
  ParseResult,
  ProviderAnswer,
  ProviderModule,
  ReceivedDelivery,
  VerificationSettings,
} from "./types.js";

/**
 * Twilio's messaging webhooks: inbound SMS/MMS and message status callbacks, form-encoded, signed with
 * `X-Twilio-Signature`. Pure functions; nothing here touches the database.
 *
 * One request is one raw event (a record of its form parameters). An inbound message is read by
 * `twilioInbound` (the intake keeps it as an inbound message, not as a delivery event); a status callback is
 * normalized to a canonical SMS event whose type is Twilio's `MessageStatus`.
 */

export const signatureHeader = "x-twilio-signature";
/** Present when Twilio signed with a SharedKey: `key=…,algorithm=HMAC_SHA256`. Absent: HMAC-SHA1. */
export const signatureSettingsHeader = "x-twilio-webhooks-signature-settings";
/** Twilio's id of the webhook attempt (the same on its retries): kept for audits. */
export const idempotencyHeader = "i-twilio-idempotency-token";

const header = (headers: IncomingRequest["headers"], name: string) => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** A source with an auth token checks the signature on the URL Twilio called and the exact body. */
function authenticate(
  request: IncomingRequest,
  settings: VerificationSettings | null,
): HeraldError | undefined {
  const authToken = settings?.auth_token;
  if (!authToken) return undefined;
  const signature = header(request.headers, signatureHeader);
  if (!signature) return new HeraldError("invalid_signature", `Signed source: send ${signatureHeader}`);
  const valid = verifySignature(authToken, {
    url: request.publicUrl,
    body: request.body,
    signature,
    signatureSettings: header(request.headers, signatureSettingsHeader),
  });
  return valid
    ? undefined
    : new HeraldError(
        "invalid_signature",
        "The signature does not match the URL and body (Twilio signs the URL it called: behind a proxy, set " +
          "HERALD_PUBLIC_URL or trust the proxy's X-Forwarded-* headers)",
      );
}

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

const invalid = (detail: string, path = "/body"): ParseResult => ({
  ok: false,
  code: "validation_failed",
  detail,
  path,
});

/** The most parameters one request may hold (Twilio sends a few dozen; an MMS adds two per media item, ≤ 10). */
const maxParams = 500;

/**
 * A request's body: form-encoded (`application/x-www-form-urlencoded`, UTF-8) parameters, one raw event
 * holding them (a name given twice holds its values as an array). It must name its message (`MessageSid`):
 * without it a callback can neither be deduplicated nor linked.
 */
export function parseForm(body: Buffer): ParseResult {
  const trimmed = body.toString("latin1").trim();
  if (trimmed === "") return invalid("The body is empty: Twilio sends form-encoded parameters");
  if (trimmed.startsWith("{") || trimmed.startsWith("["))
    return invalid(
      "The body is JSON: Twilio's messaging webhooks are form-encoded (application/x-www-form-urlencoded)",
    );
  const form = formEntries(body);
  if (!form) return invalid("The body is not form-encoded UTF-8 (name=value&name=value)");
  if (form.entries.length > maxParams) return invalid(`The body holds more than ${maxParams} parameters`);
  const grouped = new Map<string, string[]>();
  for (const [name, value] of form.entries) {
    // Neither text nor jsonb can hold a NUL: refused here, where the sender learns of it.
    if (name.includes("\u0000") || value.includes("\u0000"))
      return invalid("A parameter holds a NUL character (%00), which cannot be stored", pointer(name));
    const values = grouped.get(name);
    if (values) values.push(value);
    else grouped.set(name, [value]);
  }
  // Object.fromEntries defines each name as an own property: "__proto__" is a name like any other.
  const event: Record<string, unknown> = Object.fromEntries(
    [...grouped].map(([name, values]) => [name, values.length === 1 ? values[0] : values]),
  );
  const sid = event.MessageSid ?? event.SmsSid;
  if (typeof sid !== "string" || sid === "")
    return invalid("MessageSid is required: a single, non-empty id of the message", "/body/MessageSid");
  for (const name of ["MessageStatus", "SmsStatus", "From", "To", "Body", "ErrorCode"]) {
    if (Array.isArray(event[name])) return invalid(`${name} is given more than once`, pointer(name));
  }
  return { ok: true, events: [event], text: form.text };
}

/** A JSON pointer to a parameter (`~` and `/` escaped; a name past 200 characters cut there). */
const pointer = (name: string) => `/body/${name.slice(0, 200).replaceAll("~", "~0").replaceAll("/", "~1")}`;

// ---------------------------------------------------------------------------------------------------------
// Classifying and normalizing
// ---------------------------------------------------------------------------------------------------------

const str = (v: unknown): string | null => (typeof v === "string" && v.length > 0 ? v.slice(0, 2000) : null);

// Values Herald indexes must fit a btree entry (see sendgrid.ts): a longer id or address stays in the payload.
const maxIndexedBytes = 2000;
const indexable = (value: string | null) =>
  value !== null && Buffer.byteLength(value) <= maxIndexedBytes ? value : null;

/** The message's status as Twilio reports it (`MessageStatus`, else the older `SmsStatus`), lower-case. */
const statusOf = (raw: Record<string, unknown>) =>
  (str(raw.MessageStatus) ?? str(raw.SmsStatus))?.toLowerCase() ?? null;

const inboundStatuses = new Set(["received", "receiving"]);

/**
 * What a request is: an inbound message (`From`, `To`, and either no `MessageStatus` or `received` — Twilio
 * sends `SmsStatus=received` with an inbound one), a status callback of an outbound message
 * (`MessageStatus`), or neither.
 */
export function twilioKind(raw: Record<string, unknown>): "inbound" | "status" | "unknown" {
  const messageStatus = str(raw.MessageStatus)?.toLowerCase() ?? null;
  const smsStatus = str(raw.SmsStatus)?.toLowerCase() ?? null;
  const inboundShape = str(raw.From) !== null && str(raw.To) !== null;
  if (messageStatus !== null && !inboundStatuses.has(messageStatus)) return "status";
  if (inboundShape && (messageStatus !== null || smsStatus === null || inboundStatuses.has(smsStatus)))
    return "inbound";
  return smsStatus !== null && !inboundStatuses.has(smsStatus) ? "status" : "unknown";
}

/** A media item of an inbound MMS. */
export interface TwilioMedia {
  url: string;
  contentType: string | null;
}

/** An inbound SMS/MMS as the intake keeps it. */
export interface TwilioInbound {
  /** `MessageSid`: the idempotency key of the message, with the tenant and the channel. */
  providerMessageId: string;
  accountSid: string | null;
  messagingServiceSid: string | null;
  /** The sender in E.164 (`normalizePhone`; a short code or alphanumeric sender keeps its text). */
  from: string;
  /** The Twilio number it was sent to, in E.164. */
  to: string;
  /** The text, exactly as sent (empty for an MMS with only media). */
  body: string;
  numMedia: number;
  numSegments: number | null;
  media: TwilioMedia[];
  /**
   * The carrier keyword the body is (`domain/optOut.ts`), or, with Twilio's Advanced Opt-Out on, the one
   * Twilio recognized (`OptOutType`: its custom keywords too).
   */
  keyword: SmsKeyword | undefined;
}

const optOutTypes: Readonly<Record<string, SmsKeywordAction>> = {
  STOP: "opt_out",
  START: "opt_in",
  HELP: "help",
};

/** A count Twilio sends as digits ("0"…), or null. */
function countOf(value: unknown): number | null {
  return typeof value === "string" && /^\d{1,4}$/.test(value) ? Number(value) : null;
}

/** A raw event that is an inbound message (`twilioKind`), read; undefined for anything else. */
export function twilioInbound(raw: Record<string, unknown>): TwilioInbound | undefined {
  if (twilioKind(raw) !== "inbound") return undefined;
  const sid = str(raw.MessageSid) ?? str(raw.SmsSid);
  const from = str(raw.From);
  const to = str(raw.To);
  if (sid === null || from === null || to === null) return undefined;
  const body = typeof raw.Body === "string" ? raw.Body : "";
  const numMedia = countOf(raw.NumMedia) ?? 0;
  const media: TwilioMedia[] = [];
  for (let i = 0; i < Math.min(numMedia, 10); i++) {
    const url = str(raw[`MediaUrl${i}`]);
    if (url) media.push({ url, contentType: str(raw[`MediaContentType${i}`]) });
  }
  const optOutType = str(raw.OptOutType)?.toUpperCase();
  const twilioAction =
    optOutType && Object.hasOwn(optOutTypes, optOutType) ? optOutTypes[optOutType] : undefined;
  const keyword =
    smsKeyword(body) ??
    (twilioAction ? { keyword: body.trim().toUpperCase().slice(0, 100), action: twilioAction } : undefined);
  return {
    providerMessageId: sid,
    accountSid: str(raw.AccountSid),
    messagingServiceSid: str(raw.MessagingServiceSid),
    from: normalizePhone(from),
    to: normalizePhone(to),
    body,
    numMedia,
    numSegments: countOf(raw.NumSegments),
    media,
    keyword,
  };
}

const smsTypes = new Set<string>(smsEventTypes);

/** A callback's event type: its status (Twilio's name), else `unknown`. */
function canonicalType(raw: Record<string, unknown>): CanonicalEventType {
  const status = statusOf(raw);
  return status !== null && smsTypes.has(status) ? (status as CanonicalEventType) : "unknown";
}

/** Twilio's callbacks carry no time of their own: an event happened when it was received. */
export const eventTime = (_raw: Record<string, unknown>, receivedAt: Date): Date => receivedAt;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * A callback in the canonical shape. It has no event id: the same message, status and error code is the
 * same event (a retried or repeated callback is stored once), whenever it arrives.
 */
export function normalizeEvent(raw: Record<string, unknown>, receivedAt: Date): CanonicalEvent {
  const sid = str(raw.MessageSid) ?? str(raw.SmsSid);
  const status = statusOf(raw);
  const errorCode = str(raw.ErrorCode);
  const errorMessage = str(raw.ErrorMessage);
  const to = str(raw.To);
  const providerMessageId = sid !== null && sid.length <= maxProviderMessageIdLength ? sid : null;
  return {
    type: canonicalType(raw),
    eventAt: eventTime(raw, receivedAt),
    dedupeKey: `h:${sha256(JSON.stringify([sid, status, errorCode]))}`,
    providerEventId: null,
    providerMessageId,
    heraldMessageId: null,
    recipient: indexable(to === null ? null : normalizePhone(to)),
    url: null,
    ip: null,
    userAgent: null,
    reason: errorCode && errorMessage ? `${errorCode}: ${errorMessage}` : (errorCode ?? errorMessage),
    bounceClassification: null,
    machineOpen: null,
    groupId: null,
    payload: raw,
  };
}

/** A `MessageSid` links only the message registered with that very id (it has no suffixes). */
export const linkCandidates = (messageId: string): string[] =>
  messageId.length <= maxProviderMessageIdLength ? [messageId] : [];

/** The answer to an inbound message: TwiML that sends no reply. */
export const emptyTwiml = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

/**
 * A kept request's answer: an empty TwiML `<Response/>` (no auto-reply) for an inbound message, an empty
 * 200 for a status callback (Twilio reads nothing from it). Without its events, TwiML: right for both.
 */
function answer(_received: ReceivedDelivery, events?: readonly Record<string, unknown>[]): ProviderAnswer {
  const first = events?.[0];
  if (first && twilioKind(first) === "status") return { status: 200, contentType: "text/plain", text: "" };
  return { status: 200, contentType: "text/xml", text: emptyTwiml };
}

/** Twilio's messaging webhooks (SMS/MMS): form-encoded, signed with the account's auth token (HMAC-SHA1). */
export const twilio: ProviderModule = {
  name: "twilio",
  channel: "sms",
  verificationFields: ["auth_token"],
  validateVerification(settings) {
    return missingFields("twilio", this.verificationFields, settings);
  },
  keptHeaders: [signatureHeader, signatureSettingsHeader, idempotencyHeader],
  authenticate,
  parse: parseForm,
  eventsAreBodyItems: false,
  eventTime,
  normalize: normalizeEvent,
  rawType: rawTypeField("MessageStatus", "SmsStatus"),
  linkCandidates,
  answer,
};
