import type { SQL } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { type Executor, query } from "../db/client.js";
import { normalizeAddress } from "../domain/address.js";
import { messageIdOf } from "../domain/messageIds.js";
import { type SmsKeyword, smsKeyword } from "../domain/optOut.js";
import type { Channel } from "../domain/vocabularies.js";
import { twilioInbound } from "../providers/twilio.js";
import { enqueueInbound, storedInbound } from "../queue/enqueueInbound.js";

/**
 * How long the intake's wake-ups of the inbound workers gather (`QueueWakeups`): under a stream of messages
 * the workers are woken at most this often and thread what came meanwhile in one transaction, a few
 * milliseconds of latency for far fewer transactions.
 */
export const inboundWakeGatherMs = 10;

/** An inbound message as the intake takes it (`POST /api/v1/inbound`, or a provider's webhook). */
export interface InboundInput {
  channel: Channel;
  provider: string;
  providerMessageId: string;
  from: string;
  to: string;
  body: string;
  subject?: string | undefined;
  /** An email's `In-Reply-To` and `References` message ids, angle brackets optional. */
  inReplyTo?: string | undefined;
  references?: readonly string[] | undefined;
  receivedAt?: Date | undefined;
  /** The carrier keyword an SMS is, when its provider says so (else read from the body). */
  keyword?: SmsKeyword | undefined;
  /** Extra provider fields kept on the message (Twilio's media, segments…). */
  metadata?: Record<string, unknown> | undefined;
}

/**
 * What the queue row's payload holds: the message, normalized, and the id its `inbound_messages` row will
 * have (given at intake so the answer can name it, and repeats name the same one).
 */
export interface InboundPayload {
  message_id: string;
  from: string;
  to: string;
  body: string;
  subject: string | null;
  in_reply_to: string | null;
  references: string[];
  received_at: string;
  keyword: SmsKeyword | null;
  metadata: Record<string, unknown>;
}

export interface InboundReceived {
  /** The inbound message's id (the same for every copy). */
  id: string;
  /** The queue row (`inbound_events.id`). */
  eventId: number;
  duplicate: boolean;
}

export interface ReceiveInboundOptions {
  /** Processing attempts before the message becomes a dead letter (HERALD_MAX_ATTEMPTS). @defaultValue 5 */
  maxAttempts?: number;
  /**
   * A condition the statement checks before it keeps anything (the API door's: its key is live); false,
   * nothing is kept and `receiveInbound` resolves to undefined.
   */
  onlyIf?: SQL | undefined;
}

/**
 * Keep one inbound message in `inbound_events`, once per tenant + channel + provider message id, in the
 * caller's transaction (or as its own statement): a repeat, also one racing the first, answers with the
 * stored row and `duplicate: true` and adds nothing. The caller wakes the workers after the commit
 * (`QueueWakeups`).
 */
export async function receiveInbound(
  executor: Executor,
  tenantId: string,
  input: InboundInput,
  options: ReceiveInboundOptions = {},
): Promise<InboundReceived | undefined> {
  const payload: InboundPayload = {
    message_id: uuidv7(),
    from: normalizeAddress(input.channel, input.from),
    to: normalizeAddress(input.channel, input.to),
    body: input.body,
    subject: input.subject ?? null,
    in_reply_to: messageIdOf(input.inReplyTo) ?? null,
    references: (input.references ?? []).flatMap((id) => messageIdOf(id) ?? []),
    received_at: (input.receivedAt ?? new Date()).toISOString(),
    keyword: input.channel === "sms" ? (input.keyword ?? smsKeyword(input.body) ?? null) : null,
    metadata: input.metadata ?? {},
  };
  const key = { tenantId, channel: input.channel, providerMessageId: input.providerMessageId };
  type Row = { id: string | number; payload: InboundPayload | string; duplicate: boolean; allowed?: boolean };
  let [row] = await query<Row>(
    executor,
    enqueueInbound(
      {
        ...key,
        provider: input.provider,
        payload: payload as unknown as Record<string, unknown>,
        maxAttempts: options.maxAttempts ?? 5,
      },
      options.onlyIf,
    ),
    // One of two texts (with or without a condition): prepared, so the intake is one round trip.
    { prepare: true },
  );
  if (row?.allowed === false) return undefined;
  // The first copy committed while that statement ran (it waited for it, then saw it only as a conflict).
  if (!row) [row] = await query<Row>(executor, storedInbound(key));
  if (!row) throw new Error("inbound insert conflicted but no row holds its key");
  const stored = (typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload) as InboundPayload;
  return { id: stored.message_id, eventId: Number(row.id), duplicate: row.duplicate };
}

/** A Twilio request's raw event as an inbound message (undefined for a status callback or anything else). */
export function twilioInboundInput(raw: Record<string, unknown>): InboundInput | undefined {
  const sms = twilioInbound(raw);
  if (!sms) return undefined;
  return {
    channel: "sms",
    provider: "twilio",
    providerMessageId: sms.providerMessageId,
    from: sms.from,
    to: sms.to,
    body: sms.body,
    keyword: sms.keyword,
    metadata: {
      account_sid: sms.accountSid,
      messaging_service_sid: sms.messagingServiceSid,
      num_media: sms.numMedia,
      num_segments: sms.numSegments,
      media: sms.media.map((m) => ({ url: m.url, content_type: m.contentType })),
    },
  };
}
