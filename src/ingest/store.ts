import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { type Executor, query } from "../db/client.js";
import { ensurePartitions, forgetPartitionsOnError } from "../db/partitions.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
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
 * repeats are skipped, not errors) and link each new one to its outbound message: by Herald's id from the
 * custom arguments, else by provider message id — equal, or its part before the first "." (SendGrid's
 * X-Message-Id) — preferring the message sent to the event's recipient. One statement; returns only the
 * events stored now, so every effect downstream happens once.
 */
export async function storeMessageEvents(
  executor: Executor,
  events: IngestEvent[],
): Promise<StoredMessageEvent[]> {
  if (events.length === 0) return [];
  await ensurePartitions(
    executor,
    "message_events",
    events.map((e) => e.eventAt),
  );
  await lockOrphanBuckets(
    executor,
    events.map((e) => orphanBucket(e.tenantId, e.provider, e.providerMessageId)),
    "shared",
  );
  const input = events.map((e) => ({
    id: uuidv7(),
    tenant_id: e.tenantId,
    provider: e.provider,
    delivery_id: e.deliveryId,
    dedupe_key: e.dedupeKey,
    provider_event_id: e.providerEventId,
    provider_message_id: e.providerMessageId,
    herald_message_id: e.heraldMessageId,
    type: e.type,
    event_at: e.eventAt.toISOString(),
    recipient: e.recipient,
    url: e.url,
    ip: e.ip,
    user_agent: e.userAgent,
    reason: e.reason,
    bounce_classification: e.bounceClassification,
    machine_open: e.machineOpen,
    group_id: e.groupId,
    payload: e.payload,
  }));
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
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(
        id uuid, tenant_id uuid, provider text, delivery_id bigint, dedupe_key text, provider_event_id text,
        provider_message_id text, herald_message_id uuid, type text, event_at timestamptz, recipient text, url text,
        ip text, user_agent text, reason text, bounce_classification text, machine_open boolean, group_id int,
        payload jsonb)
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
    ), inserted as (
      insert into message_events (id, tenant_id, outbound_message_id, delivery_id, provider, provider_event_id,
        provider_message_id, dedupe_key, type, event_at, recipient, url, ip, user_agent, reason,
        bounce_classification, machine_open, group_id, payload)
      select id, tenant_id, message_id, delivery_id, provider, provider_event_id, provider_message_id, dedupe_key,
        type, event_at, recipient, url, ip, user_agent, reason, bounce_classification, machine_open, group_id, payload
      from linked
      returning id
    )
    select l.id, l.tenant_id, l.provider, l.type, extract(epoch from l.event_at) * 1000 as event_ms, l.dedupe_key,
      l.provider_event_id, l.provider_message_id, l.recipient, l.url, l.reason, l.group_id, l.message_id,
      m.contact_id, m.campaign_id
    from linked l join inserted n on n.id = l.id left join outbound_messages m on m.id = l.message_id`,
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
