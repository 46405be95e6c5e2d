import { createHash } from "node:crypto";
import { normalizeEmail } from "../domain/address.js";
import { unstorableEscape, unstorableNumber } from "../domain/jsonbText.js";
import { defaultMaxJsonDepth, tooDeepAt } from "../domain/jsonDepth.js";
import { linkCandidates, maxProviderMessageIdLength } from "../domain/messageIds.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
import { isUuid } from "../domain/uuid.js";
import { deliveryAnswer } from "./answer.js";
import { missingFields } from "./settings.js";
import { authenticate, control, invalid, keptHeaders, readEnvelope } from "./snsDelivery.js";
import type { CanonicalEvent, ParseResult, ProviderModule } from "./types.js";

/**
 * Amazon SES's notifications, delivered by Amazon SNS to an HTTPS subscription: SES's "notifications"
 * (`notificationType`: Bounce, Complaint, Delivery) and "event publishing" (`eventType`: Send, Reject, Bounce,
 * Complaint, Delivery, Open, Click, Rendering Failure, DeliveryDelay, Subscription) alike. The body is an SNS
 * envelope (JSON, sent as `text/plain`) whose `Message` is the SES notification as a JSON string. Pure; the
 * signing certificate comes through the authentication context.
 *
 * One SES notification may be about several recipients (a bounce lists its bounced recipients, a delivery its
 * recipients, a send its destinations): it is one raw event per recipient, each self-contained — the SNS
 * message's id, topic and time, the recipient, and the whole SES notification — so normalizing and
 * `herald reprocess` need nothing else. The same SNS message and recipient is the same event (SNS keeps the
 * `MessageId` when it retries).
 */

// ---------------------------------------------------------------------------------------------------------
// Parsing: one raw event per recipient
// ---------------------------------------------------------------------------------------------------------

const maxJsonDepth = defaultMaxJsonDepth;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === "string" && v.length > 0 ? v.slice(0, 2000) : null);

/** The SES notification's kind: `eventType` (event publishing) or `notificationType` (notifications). */
const kindOf = (ses: Json) => str(ses.eventType) ?? str(ses.notificationType);

/** An address as SES lists it, bare (a display name's `<…>` taken off). */
function bareAddress(value: unknown): string | null {
  const text = str(value);
  if (text === null) return null;
  const angle = /<([^<>]+)>\s*$/.exec(text);
  return (angle ? angle[1]! : text).trim() || null;
}

/** The addresses of a list of strings or of `{ emailAddress }` objects. */
function addresses(list: unknown, field?: string): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const address = bareAddress(field ? (isObject(item) ? item[field] : undefined) : item);
    return address === null ? [] : [address];
  });
}

/** The recipients a notification is about, where SES names them (see the table in `canonicalType`). */
function recipientsOf(ses: Json): string[] {
  const mail = isObject(ses.mail) ? ses.mail : {};
  const part = (name: string) => (isObject(ses[name]) ? (ses[name] as Json) : {});
  switch (kindOf(ses)) {
    case "Bounce":
      return addresses(part("bounce").bouncedRecipients, "emailAddress");
    case "Complaint":
      return addresses(part("complaint").complainedRecipients, "emailAddress");
    case "Delivery":
      return addresses(part("delivery").recipients);
    case "DeliveryDelay": {
      const delayed = addresses(part("deliveryDelay").delayedRecipients, "emailAddress");
      return delayed.length > 0 ? delayed : addresses(mail.destination);
    }
    case "Send":
    case "Reject":
    case "Open":
    case "Click":
    case "Rendering Failure":
    case "Subscription":
      return addresses(mail.destination);
    default:
      return [];
  }
}

/**
 * An SNS notification's body: its envelope, and the SES notification in its `Message`, as one raw event per
 * recipient (each recipient once). A notification SES does not describe, or a `Message` that is not JSON, is one
 * raw event without a recipient, kept as it came (normalized as `unknown`).
 */
export function parseNotification(body: Buffer): ParseResult {
  const read = readEnvelope(body);
  if ("error" in read) return read.error;
  const { envelope, text } = read;
  if (envelope.Type !== "Notification")
    return invalid(`The body is an SNS ${envelope.Type}, which holds no events`, "/body/Type");
  // Stored as jsonb: what PostgreSQL cannot store is refused here, where SNS learns of it (see sendgrid.ts).
  for (const [what, t] of [
    ["body", text],
    ["Message", envelope.Message],
  ] as const) {
    if (unstorableEscape(t))
      return invalid(
        `The ${what} holds a \\u0000 escape or an unpaired surrogate escape, which cannot be stored`,
      );
    if (unstorableNumber(t))
      return invalid(`The ${what} holds a number beyond PostgreSQL's numeric range, which cannot be stored`);
  }
  let ses: unknown;
  try {
    ses = JSON.parse(envelope.Message);
  } catch {
    ses = undefined;
  }
  if (ses !== undefined && tooDeepAt(ses, maxJsonDepth + 1))
    return invalid(`Message nests deeper than ${maxJsonDepth} levels`, "/body/Message");
  const sns: Json = {
    Type: envelope.Type,
    MessageId: envelope.MessageId,
    TopicArn: envelope.TopicArn,
    Timestamp: envelope.Timestamp,
    ...(typeof envelope.Subject === "string" ? { Subject: envelope.Subject } : {}),
  };
  if (!isObject(ses))
    return { ok: true, events: [{ sns, recipient: null, message: envelope.Message }], text };
  const seen = new Set<string>();
  const recipients = recipientsOf(ses).filter((r) => {
    const key = normalizeEmail(r);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const events =
    recipients.length === 0
      ? [{ sns, recipient: null, notification: ses }]
      : recipients.map((recipient) => ({ sns, recipient, notification: ses }));
  return { ok: true, events, text };
}

// ---------------------------------------------------------------------------------------------------------
// Classifying and normalizing
// ---------------------------------------------------------------------------------------------------------

/** Bounce subtypes of a permanent bounce that mean SES did not send at all (the address is suppressed). */
const suppressedSubTypes = new Set(["Suppressed", "OnAccountSuppressionList"]);
/** Transient bounces that refuse this message itself (its content, attachment or size): a block. */
const blockedSubTypes = new Set(["ContentRejected", "AttachmentRejected", "MessageTooLarge"]);

/** A topic's status by its name, in a Subscription event's preferences. */
function topicStatuses(preferences: unknown): Map<string, string> {
  const list = isObject(preferences) ? preferences.topicSubscriptionStatus : undefined;
  return new Map(
    (Array.isArray(list) ? list : []).flatMap((t) =>
      isObject(t) && str(t.topicName) && str(t.subscriptionStatus)
        ? [[t.topicName as string, t.subscriptionStatus as string]]
        : [],
    ),
  );
}

/**
 * A Subscription event (a recipient changed their preferences of a contact list): unsubscribing from all is an
 * unsubscribe; opting out of a topic is a group unsubscribe; opting back in (to a topic, or undoing "all") a
 * group resubscribe. SES's topics are names, not numbers, so these carry no group id: a topic's unsubscribe
 * is recorded, but suppresses nothing (Herald's group suppressions are by group number).
 */
function subscriptionType(subscription: Json): CanonicalEventType {
  const now = isObject(subscription.newTopicPreferences) ? subscription.newTopicPreferences : {};
  const before = isObject(subscription.oldTopicPreferences) ? subscription.oldTopicPreferences : {};
  if (now.unsubscribeAll === true) return "unsubscribe";
  const after = topicStatuses(now);
  const prior = topicStatuses(before);
  if ([...after].some(([topic, status]) => status === "OptOut" && prior.get(topic) !== "OptOut"))
    return "group_unsubscribe";
  if (
    before.unsubscribeAll === true ||
    [...after].some(([topic, status]) => status === "OptIn" && prior.get(topic) !== "OptIn")
  )
    return "group_resubscribe";
  return "unknown";
}

/**
 * SES's vocabulary in Herald's:
 *
 * | SES                                                             | canonical           |
 * | --------------------------------------------------------------- | ------------------- |
 * | Bounce, Permanent (General, NoEmail, UnsupportedAttachment, …)  | bounce (suppresses) |
 * | Bounce, Permanent / Suppressed, OnAccountSuppressionList        | dropped             |
 * | Bounce, Transient / ContentRejected, AttachmentRejected,        | blocked             |
 * |   MessageTooLarge                                               |                     |
 * | Bounce, Transient (General, MailboxFull, …)                     | deferred            |
 * | Bounce, Undetermined                                            | deferred            |
 * | Complaint                                                       | spamreport          |
 * | Complaint, complaintSubType OnAccountSuppressionList            | dropped             |
 * | Complaint, complaintFeedbackType not-spam                       | unknown             |
 * | Delivery                                                        | delivered           |
 * | Send                                                            | processed           |
 * | Reject (a virus: SES refused to send)                           | dropped             |
 * | Open / Click                                                    | open / click        |
 * | DeliveryDelay                                                   | deferred            |
 * | Rendering Failure (the template did not render: never sent)     | dropped             |
 * | Subscription                                                    | see `subscriptionType` |
 * | anything else (e.g. AmazonSnsSubscriptionSucceeded, Received)   | unknown             |
 *
 * Suppressed and OnAccountSuppressionList are SendGrid's "dropped" exactly: not sent, because the address is on
 * a suppression list; the hard bounce that put it there is its own event. Undetermined is a bounce SES could not
 * read a reason from; SES itself keeps such addresses off its suppression list, and so does Herald (a bounce
 * would suppress the address on no evidence): it is a delivery that has not happened, which a later event
 * settles. Transient bounces are soft, but one that refuses the message itself will refuse it again: a block,
 * as SendGrid calls a refusal of content (neither suppresses).
 */
export function canonicalType(ses: Json | undefined): CanonicalEventType {
  if (!ses) return "unknown";
  const part = (name: string) => (isObject(ses[name]) ? (ses[name] as Json) : {});
  switch (kindOf(ses)) {
    case "Bounce": {
      const { bounceType, bounceSubType } = part("bounce");
      if (bounceType === "Permanent")
        return suppressedSubTypes.has(bounceSubType as string) ? "dropped" : "bounce";
      if (bounceType === "Transient")
        return blockedSubTypes.has(bounceSubType as string) ? "blocked" : "deferred";
      return bounceType === "Undetermined" ? "deferred" : "unknown";
    }
    case "Complaint": {
      const complaint = part("complaint");
      if (complaint.complaintFeedbackType === "not-spam") return "unknown";
      return complaint.complaintSubType === "OnAccountSuppressionList" ? "dropped" : "spamreport";
    }
    case "Delivery":
      return "delivered";
    case "Send":
      return "processed";
    case "Reject":
    case "Rendering Failure":
      return "dropped";
    case "Open":
      return "open";
    case "Click":
      return "click";
    case "DeliveryDelay":
      return "deferred";
    case "Subscription":
      return subscriptionType(part("subscription"));
    default:
      return "unknown";
  }
}

/** The part of a notification that holds its own time, by its kind. */
const timedParts: Readonly<Record<string, string>> = {
  Bounce: "bounce",
  Complaint: "complaint",
  Delivery: "delivery",
  Open: "open",
  Click: "click",
  DeliveryDelay: "deliveryDelay",
  Subscription: "subscription",
};

/** A time SES or SNS wrote (ISO 8601), if plausible: from 2001 to a day after receipt (see sendgrid.ts). */
function plausible(value: unknown, receivedAt: Date): Date | undefined {
  if (typeof value !== "string" || !/^\d{4}-\d\d-\d\dT/.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isFinite(at) && at > 978_307_200_000 && at < receivedAt.getTime() + 86_400_000
    ? new Date(at)
    : undefined;
}

const sesOf = (raw: Json): Json | undefined => (isObject(raw.notification) ? raw.notification : undefined);
const snsOf = (raw: Json): Json => (isObject(raw.sns) ? raw.sns : {});

/**
 * When an event happened: its part's own timestamp (the bounce's, the open's…), else the mail's (a send, a
 * reject, a rendering failure happen as the mail is sent), else when SNS published it, else its receipt.
 */
export function eventTime(raw: Json, receivedAt: Date): Date {
  const ses = sesOf(raw);
  const kind = ses ? kindOf(ses) : null;
  const part = kind && Object.hasOwn(timedParts, kind) ? ses![timedParts[kind]!] : undefined;
  return (
    plausible(isObject(part) ? part.timestamp : undefined, receivedAt) ??
    plausible(isObject(ses?.mail) ? ses.mail.timestamp : undefined, receivedAt) ??
    plausible(snsOf(raw).Timestamp, receivedAt) ??
    receivedAt
  );
}

// Values Herald indexes must fit a btree entry (see sendgrid.ts).
const maxIndexedBytes = 2000;
const indexable = (value: string | null) =>
  value !== null && Buffer.byteLength(value) <= maxIndexedBytes ? value : null;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The entry of a recipient list (`bouncedRecipients`…) about `recipient`. */
function entryFor(list: unknown, recipient: string | null): Json | undefined {
  if (!Array.isArray(list) || recipient === null) return undefined;
  const wanted = normalizeEmail(recipient);
  return list.find(
    (item): item is Json =>
      isObject(item) &&
      bareAddress(item.emailAddress) !== null &&
      normalizeEmail(bareAddress(item.emailAddress)!) === wanted,
  );
}

/** The tag `herald_message_id` of the mail (SES tags are lists of values), when it is a UUID. */
function heraldMessageIdOf(mail: Json): string | null {
  const tags = isObject(mail.tags) ? mail.tags : {};
  const value = Array.isArray(tags.herald_message_id) ? tags.herald_message_id[0] : tags.herald_message_id;
  return typeof value === "string" && isUuid(value) ? value.toLowerCase() : null;
}

/**
 * A raw event in the canonical shape. Its dedupe key is the SNS message id and the recipient: SNS retries
 * with the same id, and SES publishes each event as a message of its own.
 */
export function normalizeEvent(raw: Json, receivedAt: Date): CanonicalEvent {
  const ses = sesOf(raw);
  const sns = snsOf(raw);
  const mail = ses && isObject(ses.mail) ? ses.mail : {};
  const part = (name: string) => (ses && isObject(ses[name]) ? (ses[name] as Json) : {});
  const recipient = str(raw.recipient);
  const snsMessageId = str(sns.MessageId);
  const key = `${snsMessageId ?? ""}/${recipient === null ? "" : normalizeEmail(recipient)}`;
  const messageId = str(mail.messageId);
  const kind = ses ? kindOf(ses) : null;
  const bounce = part("bounce");
  const complaint = part("complaint");
  const open = kind === "Open" ? part("open") : kind === "Click" ? part("click") : {};
  const bounced = entryFor(bounce.bouncedRecipients, recipient);
  const delayed = entryFor(part("deliveryDelay").delayedRecipients, recipient);
  const reasons: Record<string, unknown> = {
    Bounce: bounced?.diagnosticCode ?? bounced?.status,
    Complaint: complaint.complaintFeedbackType,
    Delivery: part("delivery").smtpResponse,
    Reject: part("reject").reason,
    "Rendering Failure": part("failure").errorMessage,
    DeliveryDelay: delayed?.diagnosticCode ?? part("deliveryDelay").delayType,
  };
  return {
    type: canonicalType(ses),
    eventAt: eventTime(raw, receivedAt),
    dedupeKey: indexable(key) ?? `k:${sha256(key)}`,
    providerEventId: indexable(snsMessageId),
    providerMessageId:
      messageId !== null && messageId.length <= maxProviderMessageIdLength ? messageId : null,
    heraldMessageId: heraldMessageIdOf(mail),
    recipient: indexable(recipient === null ? null : normalizeEmail(recipient)),
    url: kind === "Click" ? str(open.link) : null,
    ip: str(open.ipAddress),
    userAgent: str(open.userAgent) ?? (kind === "Complaint" ? str(complaint.userAgent) : null),
    reason: kind && Object.hasOwn(reasons, kind) ? str(reasons[kind]) : null,
    bounceClassification:
      kind === "Bounce" && str(bounce.bounceType)
        ? [str(bounce.bounceType), str(bounce.bounceSubType)].filter(Boolean).join("/")
        : null,
    machineOpen: null,
    groupId: null,
    payload: raw,
  };
}

/** Amazon SES through Amazon SNS: signed SNS messages (RSA, SNS's certificate), one topic per source. */
export const ses: ProviderModule = {
  name: "ses",
  channel: "email",
  verificationFields: ["topic_arn"],
  validateVerification(settings) {
    const missing = missingFields("ses", this.verificationFields, settings);
    if (missing) return missing;
    // A topic that is not an SNS topic's ARN would refuse every message (401s SNS retries, then drops).
    if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/.test(settings.topic_arn!))
      return {
        detail: "topic_arn is not an SNS topic's ARN, such as arn:aws:sns:us-east-1:123456789012:ses-events",
        errors: [{ field: "topic_arn", message: "is not an SNS topic ARN" }],
      };
    return undefined;
  },
  keptHeaders,
  authenticate,
  control,
  parse: parseNotification,
  eventsAreBodyItems: false,
  eventTime,
  normalize: normalizeEvent,
  rawType: (raw) => {
    const ses = sesOf(raw);
    return ses ? kindOf(ses) : null;
  },
  linkCandidates,
  answer: deliveryAnswer,
};
