/**
 * Herald's closed vocabularies: the values a column of that kind may hold. The schema builds its enums and
 * checked text columns from these lists (`db/schema`), and the rest of the code names them from here, so a
 * value is added in one place.
 */

/** How a message reaches its recipient. */
export const channels = ["email", "sms"] as const;
export type Channel = (typeof channels)[number];

/** The providers a webhook source may be for (the `{provider}` segment of its URL). */
export const providers = ["sendgrid", "postmark", "mailgun", "ses", "twilio", "resend"] as const;
export type Provider = (typeof providers)[number];

/**
 * An outbound message's delivery status; see `domain/messageStatus.ts` for the order it moves in. `sent` is
 * "registered, nothing heard yet" for both channels, so Twilio's `sent` (handed to the carrier) is
 * `sent_to_carrier`.
 */
export const messageStatuses = [
  "sent",
  "processed",
  "deferred",
  "delivered",
  "opened",
  "clicked",
  "bounced",
  "blocked",
  "dropped",
  "spam_reported",
  "unsubscribed",
  // SMS (Twilio's MessageStatus)
  "accepted",
  "scheduled",
  "queued",
  "sending",
  "sent_to_carrier",
  "partially_delivered",
  "canceled",
  "failed",
  "undelivered",
  "read",
] as const;
export type MessageStatus = (typeof messageStatuses)[number];

/** Why an address is not sent to. */
export const suppressionReasons = [
  "bounce",
  "spamreport",
  "unsubscribe",
  "group_unsubscribe",
  "manual",
  /** An inbound SMS that was a carrier opt-out keyword (STOP…), see `domain/optOut.ts`. */
  "opt_out",
] as const;
export type SuppressionReason = (typeof suppressionReasons)[number];

/** Where an event in the log came from. */
export const eventSources = ["system", "webhook", "manual", "cron", "workflow"] as const;
export type EventSource = (typeof eventSources)[number];

export const campaignStatuses = ["draft", "active", "paused", "completed", "stopped"] as const;
export type CampaignStatus = (typeof campaignStatuses)[number];

/** A queue row's state (every table the claim engine works). */
export const queueStatuses = ["pending", "processing", "completed", "dead"] as const;
export type QueueStatus = (typeof queueStatuses)[number];

/**
 * Why a message joined its conversation: an email reply whose `In-Reply-To`/`References` names a known
 * outbound message (`reply_to_message`), the tenant + channel + outside address (`address_pair`; `new` when
 * that made the conversation), or an outbound message registered to that address (`outbound`).
 */
export const threadReasons = ["reply_to_message", "address_pair", "new", "outbound"] as const;
export type ThreadReason = (typeof threadReasons)[number];
