import type { MessageStatus } from "./vocabularies.js";

/**
 * Message status moves only forward. Every status has a rank; a message's status is the strongest of the
 * events it has seen, where "strongest" is the highest rank and, between statuses of equal rank, the later
 * event. Because that is a maximum over a set, the final status does not depend on the order in which
 * events arrive (out-of-order, late and repeated deliveries all converge).
 *
 *   sent < processed < deferred < delivered < {bounced, blocked, dropped} < opened < clicked
 *        < {unsubscribed, spam_reported}
 *
 * So a bounce, block or drop replaces anything below opened, spam reports and unsubscribes replace anything
 * and only each other (the later wins), and a late `deferred` after an open changes nothing.
 */
export const statusRank: Record<MessageStatus, number> = {
  sent: 0,
  processed: 1,
  deferred: 2,
  delivered: 3,
  bounced: 4,
  blocked: 4,
  dropped: 4,
  opened: 5,
  clicked: 6,
  unsubscribed: 7,
  spam_reported: 7,
};

/** Canonical event types (SendGrid's vocabulary, shared by later providers). */
export const canonicalEventTypes = [
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
  "unknown",
] as const;
export type CanonicalEventType = (typeof canonicalEventTypes)[number];

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
