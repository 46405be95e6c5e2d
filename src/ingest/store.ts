import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { type Scalar, unnestColumns } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import { ensurePartitions, forgetPartitionsOnError } from "../db/partitions.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
import { appendFresh } from "../events/append.js";
import type { CanonicalEvent } from "../providers/sendgrid.js";
import { lockOrphanBuckets, orphanBucket } from "./orphanLocks.js";

/** A canonical event with where it came from. */
export interface IngestEvent extends CanonicalEvent {
  tenantId: string;
  provider: string;
  deliveryId: number | null;
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
 * custom arguments, else by provider message id: equal, or its part before the first "." (SendGrid's
 * X-Message-Id), preferring the message sent to the event's recipient — and append each new one to the event
 * log as `message.<type>`, so subscribers get it. One statement; returns only the events stored now, so every
 * effect downstream happens once.
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
  const ids = events.map(() => uuidv7());
  const column = <T>(pick: (e: IngestEvent) => T) => events.map(pick) as Scalar[];
  const rows = await query<{
    id: string;
    tenant_id: string;
    provider: string;
    type: CanonicalEventType;
    event_ms: number;
    dedupe_key: string;
    provider_event_id: string | null;
    provider_message_id: string | null;
    recipient: string | null;
    url: string | null;
    reason: string | null;
    group_id: number | null;
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
        { name: "provider_event_id", type: "text", values: column((e) => e.providerEventId) },
        { name: "provider_message_id", type: "text", values: column((e) => e.providerMessageId) },
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
        { name: "payload", type: "json", json: events.map((e) => e.payload) },
      ])}
    ), keyed as (
      insert into message_event_keys (tenant_id, provider, dedupe_key, message_event_id, event_at)
      select tenant_id, provider, dedupe_key, id, event_at from input
      on conflict do nothing
      returning message_event_id
    ), linked as (
      select i.*, coalesce(
        (select m.id from outbound_messages m where m.id = i.herald_message_id and m.tenant_id = i.tenant_id),
        (select m.id from outbound_messages m
          where i.provider_message_id is not null and m.tenant_id = i.tenant_id and m.provider = i.provider
            and m.provider_message_id in (i.provider_message_id, split_part(i.provider_message_id, '.', 1))
          order by (m.to_address = i.recipient) desc, m.created_at, m.id limit 1)
      ) as message_id
      from input i where i.id in (select message_event_id from keyed)
    ), stored as (
      insert into message_events (id, tenant_id, outbound_message_id, delivery_id, provider, provider_event_id,
        provider_message_id, dedupe_key, type, event_at, recipient, url, ip, user_agent, reason,
        bounce_classification, machine_open, group_id, payload)
      select id, tenant_id, message_id, delivery_id, provider, provider_event_id, provider_message_id, dedupe_key,
        type, event_at, recipient, url, ip, user_agent, reason, bounce_classification, machine_open, group_id, payload
      from linked
      returning id
    ), new as (
      select l.*, m.contact_id, m.campaign_id
      from linked l join stored n on n.id = l.id left join outbound_messages m on m.id = l.message_id
    ), fresh as (
      select herald_uuidv7() as id, tenant_id, 'message.' || type as event_type, 'webhook'::event_source as source,
        contact_id, null::text as session_id, message_id,
        jsonb_build_object('message_event_id', id, 'provider', provider, 'provider_event_id', provider_event_id,
          'provider_message_id', provider_message_id, 'recipient', recipient, 'url', url, 'reason', reason,
          'group_id', group_id) as payload,
        '{}'::jsonb as metadata, null::text as event_key, null::text as correlation_id, null::text as causation_id,
        1 as schema_version, null::bigint as sequence_number, event_at as ts, ord
      from new
    ), ${appendFresh}
    select id, tenant_id, provider, type, extract(epoch from event_at) * 1000 as event_ms, dedupe_key,
      provider_event_id, provider_message_id, recipient, url, reason, group_id, message_id, contact_id,
      campaign_id, (select count(*) from woke) as woke
    from new`,
    { prepare: true },
  ).catch((error: unknown) => {
    forgetPartitionsOnError(error);
    throw error;
  });
  return rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    provider: r.provider,
    type: r.type,
    eventAt: new Date(Number(r.event_ms)),
    dedupeKey: r.dedupe_key,
    providerEventId: r.provider_event_id,
    providerMessageId: r.provider_message_id,
    recipient: r.recipient,
    url: r.url,
    reason: r.reason,
    groupId: r.group_id === null ? null : Number(r.group_id),
    messageId: r.message_id,
    contactId: r.contact_id,
    campaignId: r.campaign_id,
  }));
}
