import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { pgArray, type Scalar, unnestColumns } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import { ensurePartitions, forgetPartitionsOnError } from "../db/partitions.js";
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
  /** Its place (from 0) in the archived delivery's array; null when it came from no delivery. */
  item: number | null;
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
 * event's raw payload is read from its archived delivery by the server (the body is parsed once there, and
 * keeps its numbers exactly as sent); only events that came from no delivery send theirs.
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
  // Ids made here (UUIDv7, as the columns' default): the message event's, and its log event's if it is new.
  const ids = events.map(() => uuidv7());
  const logIds = events.map(() => uuidv7());
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
        { name: "log_id", type: "uuid", values: logIds },
        { name: "tenant_id", type: "uuid", values: column((e) => e.tenantId) },
        { name: "provider", type: "text", values: column((e) => e.provider) },
        { name: "delivery_id", type: "bigint", values: column((e) => e.deliveryId) },
        { name: "dedupe_key", type: "text", values: column((e) => e.dedupeKey) },
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
        { name: "item", type: "int", values: column((e) => e.item) },
        {
          name: "payload",
          type: "json",
          json: events.some((e) => e.item === null)
            ? events.map((e) => (e.item === null ? e.payload : null))
            : null,
        },
      ])}
    ), archived as materialized (
      -- Materialized: each body is parsed once per statement, whatever join the planner picks (inlined, a
      -- nested loop would parse it again for every event: seconds per delivery).
      select d.id as delivery_id, e.i - 1 as item, e.payload
      from webhook_deliveries d,
        jsonb_array_elements(ltrim(convert_from(d.body, 'UTF8'), chr(65279))::jsonb) with ordinality as e(payload, i)
      where d.id in (select delivery_id from input where item is not null)
    ), keyed as (
      -- In key order: two deliveries holding the same events in different orders would otherwise each wait
      -- for the other's uncommitted key (a deadlock, and a wasted attempt).
      insert into message_event_keys (tenant_id, provider, dedupe_key, message_event_id, event_at)
      select tenant_id, provider, dedupe_key, id, event_at from input
      order by tenant_id, provider, dedupe_key, ord
      on conflict do nothing
      returning message_event_id
    ), linked as (
      select i.*, coalesce(a.payload, i.payload::jsonb) as event_payload, coalesce(
        (select m.id from outbound_messages m where m.id = i.herald_message_id and m.tenant_id = i.tenant_id),
        -- Else by its provider message id (see messages/linking.ts).
        ${messageOfProviderId}
      ) as message_id
      from input i left join archived a on a.delivery_id = i.delivery_id and a.item = i.item
      where i.id in (select message_event_id from keyed)
    ), stored as (
      insert into message_events (id, tenant_id, outbound_message_id, delivery_id, provider, provider_event_id,
        provider_message_id, dedupe_key, type, event_at, recipient, url, ip, user_agent, reason,
        bounce_classification, machine_open, group_id, payload, log_event_id)
      select id, tenant_id, message_id, delivery_id, provider, provider_event_id, provider_message_id, dedupe_key,
        type, event_at, recipient, url, ip, user_agent, reason, bounce_classification, machine_open, group_id,
        event_payload, log_id
      from linked
      returning id
    ), new as (
      select l.*, m.contact_id, m.campaign_id
      from linked l join stored n on n.id = l.id left join outbound_messages m on m.id = l.message_id
    ), fresh as (
      select log_id as id, tenant_id, 'message.' || type as event_type, 'webhook'::event_source as source,
        contact_id, null::text as session_id, message_id,
        jsonb_build_object('message_event_id', id, 'provider', provider, 'provider_event_id', provider_event_id,
          'provider_message_id', provider_message_id, 'recipient', recipient, 'url', url, 'reason', reason,
          'group_id', group_id) as payload,
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
