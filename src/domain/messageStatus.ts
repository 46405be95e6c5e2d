import type { MessageStatus } from "./vocabularies.js";

/**
 * Message status moves only forward. Every status has a rank; a message's status is the strongest of the
 * events it has seen, where "strongest" is the highest rank and, between statuses of equal rank, the later
 * event. Because that is a maximum over a set, the final status does not depend on the order in which
 * events arrive (out-of-order, late and repeated deliveries all converge).
 *
 * Email (SendGrid):
 *
 *   sent < processed < deferred < delivered < {bounced, blocked, dropped} < opened < clicked
 *        < {unsubscribed, spam_reported}
 *
 * So a bounce, block or drop replaces anything below opened, spam reports and unsubscribes replace anything
 * and only each other (the later wins), and a late `deferred` after an open changes nothing.
 *
 * SMS (Twilio's MessageStatus; its `sent` is `sent_to_carrier` here, `sent` being "registered"):
 *
 *   sent < accepted < scheduled < queued < sending < sent_to_carrier < partially_delivered < delivered
 *        < canceled < failed < undelivered < read
 *
 * the order a message goes through (a Messaging Service accepts, a scheduled message waits, then it is
 * queued, sent and delivered). A failure replaces a delivery, as a bounce does for email; a read receipt
 * proves delivery and replaces anything. Twilio's callbacks carry no timestamp (an event's time is when it
 * was received), so every SMS status has a rank of its own: with no ties, the result does not depend on the
 * order in which callbacks arrive either.
 *
 * The ranks are spaced by ten so that the two channels interleave without renumbering; the statuses of one
 * channel never meet those of the other on a message (but `sent` and `delivered`, which both share).
 * `herald_status_rank` (migration 0021) is this table in SQL, and a test keeps them equal.
 */
export const statusRank: Record<MessageStatus, number> = {
  sent: 0,
  accepted: 3,
  scheduled: 4,
  queued: 5,
  processed: 10,
  sending: 15,
  deferred: 20,
  sent_to_carrier: 25,
  partially_delivered: 28,
  delivered: 30,
  bounced: 40,
  blocked: 40,
  dropped: 40,
  canceled: 41,
  failed: 42,
  undelivered: 43,
  opened: 50,
  read: 55,
  clicked: 60,
  unsubscribed: 70,
  spam_reported: 70,
};

/** Email event types: SendGrid's vocabulary (and Herald's derived `blocked`). */
export const emailEventTypes = [
  "processed",
  "deferred",
  "delivered",
  "open",
  "click",
  "bounce",
  "blocked",
  "dropped",
  "spamreport",
  "unsubscribe",
  "group_unsubscribe",
  "group_resubscribe",
] as const;

/**
 * SMS event types: Twilio's `MessageStatus` values (twilio-oai MessageEnumStatus). `receiving` and
 * `received` are inbound messages' statuses. `delivered` is shared with email.
 */
export const smsEventTypes = [
  "accepted",
  "scheduled",
  "queued",
  "sending",
  "sent",
  "partially_delivered",
  "delivered",
  "undelivered",
  "failed",
  "read",
  "canceled",
  "receiving",
  "received",
] as const;

/** Canonical event types: every provider maps its own vocabulary onto these. */
export const canonicalEventTypes = [
  ...emailEventTypes,
  ...smsEventTypes.filter((t): t is Exclude<typeof t, "delivered"> => t !== "delivered"),
  "unknown",
] as const;
export type CanonicalEventType =
  | (typeof emailEventTypes)[number]
  | (typeof smsEventTypes)[number]
  | "unknown";

/** The status an event of this type proposes, or null when it says nothing about delivery. */
export const statusOfEvent: Record<CanonicalEventType, MessageStatus | null> = {
  processed: "processed",
  deferred: "deferred",
  delivered: "delivered",
  open: "opened",
  click: "clicked",
  bounce: "bounced",
  blocked: "blocked",
  dropped: "dropped",
  spamreport: "spam_reported",
  unsubscribe: "unsubscribed",
  group_unsubscribe: "unsubscribed",
  group_resubscribe: null,
  accepted: "accepted",
  scheduled: "scheduled",
  queued: "queued",
  sending: "sending",
  sent: "sent_to_carrier",
  partially_delivered: "partially_delivered",
  undelivered: "undelivered",
  failed: "failed",
  read: "read",
  canceled: "canceled",
  receiving: null,
  received: null,
  unknown: null,
};

export interface StatusPoint {
  status: MessageStatus;
  at: Date;
}

/** Whether `next` replaces `current` (the rule above; equal strength keeps the current status). */
export function replacesStatus(current: StatusPoint, next: StatusPoint): boolean {
  const a = statusRank[current.status];
  const b = statusRank[next.status];
  if (b !== a) return b > a;
  if (next.at.getTime() !== current.at.getTime()) return next.at > current.at;
  return next.status > current.status; // a fixed tie-break keeps the result order-independent
}
