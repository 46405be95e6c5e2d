import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { pgArray, type Scalar, unnestColumns } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import { ensurePartitions, forgetPartitionsOnError } from "../db/partitions.js";
import { dedupeHash } from "../domain/dedupeHash.js";
import type { ByteRange } from "../domain/jsonArrayItems.js";
import { linkPrefixLengths } from "../domain/messageIds.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
import { appendFresh } from "../events/append.js";
import type { CanonicalEvent } from "../providers/types.js";
import { messageOfProviderId } from "./linking.js";
import { lockOrphanBuckets, orphanBucket } from "./orphanLocks.js";

/** A canonical event with where it came from. */
export interface IngestEvent extends CanonicalEvent {
  tenantId: string;
  provider: string;
  deliveryId: number | null;
  /**
   * Where its bytes sit in the archived delivery's body, when they are its raw payload (an item of the body's
   * array): stored instead of a copy. Null when it came from no delivery, or its delivery is not such an array.
   */
  raw: ByteRange | null;
}

/** An event stored for the first time, with the message it was linked to. */
export interface StoredMessageEvent {
  id: string;
  tenantId: string;
  provider: string;
  type: CanonicalEventType;
  eventAt: Date;
  dedupeKey: string;
  providerEventId: string | null;
  providerMessageId: string | null;
  recipient: string | null;
  url: string | null;
  reason: string | null;
  groupId: number | null;
  messageId: string | null;
  contactId: string | null;
  campaignId: string | null;
}

/**
 * Store a batch of canonical events once each (the key table holds the rule across monthly partitions;
 * repeats are skipped, not errors), link each new one to its outbound message — by Herald's id from the
 * custom arguments, else by provider message id: the longest registered id that it equals or that it starts
 * with followed by "." (see `linkPrefixLengths`); where several messages have that id, only the one sent to
 * the event's recipient — and append each new one to the event log as `message.<type>`, so subscribers get
 * it. One statement; returns only the events stored now, so every effect downstream happens once. An
 * event whose bytes are an item of its archived delivery's array keeps where they sit, not a copy (readers
 * slice the body: `messages/events.ts`); only the others send their payload.
 */
export async function storeMessageEvents(
  executor: Executor,
  events: IngestEvent[],
): Promise<StoredMessageEvent[]> {
  if (events.length === 0) return [];
  const times = events.map((e) => e.eventAt);
  await ensurePartitions(executor, "message_events", times);
  await ensurePartitions(executor, "events", times);
  await lockOrphanBuckets(
    executor,
    events.map((e) => orphanBucket(e.tenantId, e.provider, e.providerMessageId)),
    "shared",
  );
  // Ids made here (UUIDv7, as the columns' default): the message event's, which its log event shares.
  const ids = events.map(() => uuidv7());
  const column = <T>(pick: (e: IngestEvent) => T) => events.map(pick) as Scalar[];
  const rows = await query<{
    ord: number;
    message_id: string | null;
    contact_id: string | null;
    campaign_id: string | null;
  }>(
    executor,
    sql`with input as (
      select x.*
      from ${unnestColumns("x", [
        { name: "id", type: "uuid", values: ids },
        { name: "tenant_id", type: "uuid", values: column((e) => e.tenantId) },
        { name: "provider", type: "text", values: column((e) => e.provider) },
        { name: "delivery_id", type: "bigint", values: column((e) => e.deliveryId) },
        { name: "dedupe_key", type: "text", values: column((e) => e.dedupeKey) },
        { name: "key_hash", type: "uuid", values: column((e) => dedupeHash(e.provider, e.dedupeKey)) },
        { name: "provider_event_id", type: "text", values: column((e) => e.providerEventId) },
        { name: "provider_message_id", type: "text", values: column((e) => e.providerMessageId) },
        // The lengths of the registered ids that could link it, longest first (an int[] literal per event).
        {
          name: "link_lengths",
          type: "text",
          values: column((e) =>
            e.providerMessageId ? pgArray(linkPrefixLengths(e.providerMessageId)) : null,
          ),
        },
        { name: "herald_message_id", type: "uuid", values: column((e) => e.heraldMessageId) },
        { name: "type", type: "text", values: column((e) => e.type) },
        { name: "event_at", type: "timestamptz", values: column((e) => e.eventAt.toISOString()) },
        { name: "recipient", type: "text", values: column((e) => e.recipient) },
        { name: "url", type: "text", values: column((e) => e.url) },
        { name: "ip", type: "text", values: column((e) => e.ip) },
        { name: "user_agent", type: "text", values: column((e) => e.userAgent) },
        { name: "reason", type: "text", values: column((e) => e.reason) },
        { name: "bounce_classification", type: "text", values: column((e) => e.bounceClassification) },
        { name: "machine_open", type: "boolean", values: column((e) => e.machineOpen) },
        { name: "group_id", type: "int", values: column((e) => e.groupId) },
        { name: "raw_offset", type: "int", values: column((e) => e.raw?.offset ?? null) },
        { name: "raw_length", type: "int", values: column((e) => e.raw?.length ?? null) },
        {
          name: "payload",
          type: "json",
          json: events.some((e) => e.raw === null)
            ? events.map((e) => (e.raw === null ? e.payload : null))
            : null,
        },
      ])}
    ), firsts as (
      -- An event repeated within the batch: its first.
      select distinct on (tenant_id, key_hash) * from input order by tenant_id, key_hash, ord
    ), keyed as (
      -- In key order: two deliveries holding the same events in different orders would otherwise each wait
      -- for the other's uncommitted key (a deadlock, and a wasted attempt).
      insert into message_event_keys (tenant_id, key_hash)
      select tenant_id, key_hash from firsts order by tenant_id, key_hash
      on conflict do nothing
      returning tenant_id, key_hash
    ), linked as (
      select i.*, coalesce(
        (select m.id from outbound_messages m where m.id = i.herald_message_id and m.tenant_id = i.tenant_id),
        -- Else by its provider message id (see messages/linking.ts).
        ${messageOfProviderId}
      ) as message_id
      from firsts i
      where (i.tenant_id, i.key_hash) in (select tenant_id, key_hash from keyed)
    ), stored as (
      insert into message_events (id, tenant_id, outbound_message_id, delivery_id, provider, provider_event_id,
        provider_message_id, dedupe_key, type, event_at, recipient, url, ip, user_agent, reason,
        bounce_classification, machine_open, group_id, payload, raw_offset, raw_length)
      select id, tenant_id, message_id, delivery_id, provider, provider_event_id, provider_message_id, dedupe_key,
        type, event_at, recipient, url, ip, user_agent, reason, bounce_classification, machine_open, group_id,
        payload::jsonb, raw_offset, raw_length
      from linked
      returning id
    ), new as (
      select l.*, m.contact_id, m.campaign_id
      from linked l join stored n on n.id = l.id left join outbound_messages m on m.id = l.message_id
    ), fresh as (
      -- Its log event: the message event's id and time, and no payload of its own (the log's readers make it
      -- from the message event: \`events/columns.ts\`).
      select id, tenant_id, 'message.' || type as event_type, 'webhook'::event_source as source,
        contact_id, null::text as session_id, message_id, null::jsonb as payload,
        '{}'::jsonb as metadata, null::text as event_key, null::text as correlation_id, null::text as causation_id,
        1 as schema_version, null::bigint as sequence_number, event_at as ts, ord
      from new
    ), ${appendFresh}
    select ord, message_id, contact_id, campaign_id, (select count(*) from woke) as woke from new`,
    { prepare: true },
  ).catch((error: unknown) => {
    forgetPartitionsOnError(error);
    throw error;
  });
  // Only what the database decided comes back; the rest of each stored event is the input row (`ord` is 1-based).
  return rows.map((r) => {
    const at = Number(r.ord) - 1;
    const e = events[at]!;
    return {
      id: ids[at]!,
      tenantId: e.tenantId,
      provider: e.provider,
      type: e.type,
      eventAt: e.eventAt,
      dedupeKey: e.dedupeKey,
      providerEventId: e.providerEventId,
      providerMessageId: e.providerMessageId,
      recipient: e.recipient,
      url: e.url,
      reason: e.reason,
      groupId: e.groupId,
      messageId: r.message_id,
      contactId: r.contact_id,
      campaignId: r.campaign_id,
    };
  });
}
