import { and, desc, eq, sql } from "drizzle-orm";
import { pgArray, unnestColumns } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { contactCampaigns, type OutboundMessage, outboundMessages } from "../db/schema/index.js";
import type { Page } from "../domain/cursor.js";
import type { Channel, MessageStatus } from "../domain/vocabularies.js";
import { HeraldError } from "../errors.js";
import { linkCandidates, linkingId, messageIdRoot, normalizeEmail } from "../providers/sendgrid.js";
import { recomputeStatus, stopCampaigns } from "./effects.js";
import { lockOrphanBuckets, orphanBucket } from "./orphanLocks.js";
import type { StoredMessageEvent } from "./store.js";

export interface NewMessage {
  channel: Channel;
  provider: string;
  to: string;
  providerMessageId?: string | undefined;
  from?: string | undefined;
  subject?: string | undefined;
  contactId?: string | undefined;
  campaignId?: string | undefined;
  dedupeKey?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  sentAt?: Date | undefined;
}

export const normalizeAddress = (channel: Channel, address: string) =>
  channel === "email" ? normalizeEmail(address) : address.replace(/[\s().-]/g, "");

const e164 = /^\+[1-9]\d{6,14}$/;
const emailShape = /^[^\s@<>]+@[^\s@<>]+$/;

/**
 * Why an address, once normalized, cannot be one of its channel's (null: it can). A phone number must be
 * E.164 — a national number has no country to normalize it with, and stored as sent it would never match
 * the provider's `+…` in events — and an email a bare address (a display name would never match either).
 */
export function addressProblem(channel: Channel, address: string): string | null {
  const normalized = normalizeAddress(channel, address);
  if (channel === "sms")
    return e164.test(normalized) ? null : "is not an E.164 phone number (such as +14155550100)";
  return emailShape.test(normalized) ? null : "is not an email address (such as ada@example.com)";
}

/**
 * Register a batch of messages in the caller's transaction, in input order. Their link locks are all taken
 * first, in ascending order as processors take theirs: taken one message at a time, in input order, two
 * batches or a batch and a processor could each wait for the other (the per-message lock is then a no-op:
 * a transaction may take an advisory lock it already holds). Every message is inserted before any links its
 * orphans, so the messages of one send to several recipients, registered together, each get their own
 * recipient's events (API.md: where several messages share an id, the recipient decides).
 */
export async function registerMessages(
  executor: Executor,
  tenantId: string,
  inputs: NewMessage[],
): Promise<OutboundMessage[]> {
  await lockOrphanBuckets(
    executor,
    inputs.map((input) => orphanBucket(tenantId, input.provider, input.providerMessageId)),
    "exclusive",
  );
  const inserted: { message: OutboundMessage; created: boolean }[] = [];
  for (const input of inputs) inserted.push(await insertMessage(executor, tenantId, input));
  const messages: OutboundMessage[] = [];
  for (const { message, created } of inserted)
    messages.push(created ? await withOrphansLinked(executor, message) : message);
  return messages;
}

/**
 * Register a sent message (idempotent on `dedupe_key`: the same key returns the stored message). Events
 * that arrived before it — stored unlinked — are linked now, its status recomputed from them, and a
 * campaign it belongs to is stopped if one of them says so.
 */
export async function registerMessage(
  executor: Executor,
  tenantId: string,
  input: NewMessage,
): Promise<{ message: OutboundMessage; created: boolean }> {
  const { message, created } = await insertMessage(executor, tenantId, input);
  return { message: created ? await withOrphansLinked(executor, message) : message, created };
}

/** Insert a message, or find the one its dedupe key names (`created` false), under its link lock. */
async function insertMessage(
  executor: Executor,
  tenantId: string,
  input: NewMessage,
): Promise<{ message: OutboundMessage; created: boolean }> {
  if (input.campaignId) {
    // A foreign key does not see tenants: make sure the campaign is this tenant's.
    const [campaign] = await executor
      .select({ id: contactCampaigns.id })
      .from(contactCampaigns)
      .where(and(eq(contactCampaigns.id, input.campaignId), eq(contactCampaigns.tenantId, tenantId)));
    if (!campaign) {
      throw new HeraldError("validation_failed", "campaign_id is not a campaign of this tenant", [
        { path: "/body/campaign_id", message: "unknown campaign" },
      ]);
    }
  }
  await lockOrphanBuckets(
    executor,
    [orphanBucket(tenantId, input.provider, input.providerMessageId)],
    "exclusive",
  );
  const [inserted] = await executor
    .insert(outboundMessages)
    .values({
      tenantId,
      channel: input.channel,
      provider: input.provider,
      toAddress: normalizeAddress(input.channel, input.to),
      providerMessageId: input.providerMessageId,
      fromAddress: input.from,
      subject: input.subject,
      contactId: input.contactId,
      campaignId: input.campaignId,
      dedupeKey: input.dedupeKey,
      metadata: input.metadata ?? {},
      sentAt: input.sentAt ?? new Date(),
      statusAt: input.sentAt ?? new Date(),
    })
    .onConflictDoNothing()
    .returning();
  if (inserted) return { message: inserted, created: true };
  const [existing] = await executor
    .select()
    .from(outboundMessages)
    .where(
      and(eq(outboundMessages.tenantId, tenantId), eq(outboundMessages.dedupeKey, input.dedupeKey ?? "")),
    );
  if (!existing) throw new Error("message insert conflicted but no message holds its dedupe key");
  return { message: existing, created: false };
}

/** A new message with its orphans linked, as it now stands (its status recomputed from them). */
async function withOrphansLinked(executor: Executor, message: OutboundMessage): Promise<OutboundMessage> {
  if (!message.providerMessageId) return message;
  await linkOrphans(executor, message);
  const [fresh] = await executor.select().from(outboundMessages).where(eq(outboundMessages.id, message.id));
  return fresh ?? message;
}

/**
 * Link the unlinked events that a new message's provider id links (the provider module's rule, API.md): found
 * through the unlinked index on their id's root, less those a longer registered id links (the longest wins,
 * as when an event arrives), and where several messages share the id, only the recipient's.
 */
async function linkOrphans(executor: Executor, message: OutboundMessage): Promise<void> {
  const registered = message.providerMessageId!;
  const orphans = await query<{ id: string; event_at: string; provider_message_id: string }>(
    executor,
    sql`select id, event_at::text as event_at, provider_message_id from message_events
      where tenant_id = ${message.tenantId} and outbound_message_id is null and provider = ${message.provider}
        and split_part(provider_message_id, '.', 1) = ${messageIdRoot(registered)}
        and (provider_message_id = ${registered} or starts_with(provider_message_id, ${`${registered}.`}))`,
  );
  if (orphans.length === 0) return;
  const longer = [
    ...new Set(
      orphans.flatMap((o) =>
        linkCandidates(o.provider_message_id).filter((id) => id.length > registered.length),
      ),
    ),
  ];
  const taken =
    longer.length === 0
      ? []
      : await query<{ provider_message_id: string }>(
          executor,
          sql`select distinct provider_message_id from outbound_messages
            where tenant_id = ${message.tenantId} and provider = ${message.provider}
              and provider_message_id = any(${pgArray(longer)}::text[])`,
        );
  const registeredIds = new Set([registered, ...taken.map((m) => m.provider_message_id)]);
  const own = orphans.filter((o) => linkingId(o.provider_message_id, registeredIds) === registered);
  if (own.length === 0) return;
  const linked = await query<{
    id: string;
    type: StoredMessageEvent["type"];
    dedupe_key: string;
    provider: string;
  }>(
    executor,
    sql`with candidates as (
      select e.id, e.event_at, e.recipient
      from ${unnestColumns("c", [
        { name: "id", type: "uuid", values: own.map((o) => o.id) },
        { name: "event_at", type: "timestamptz", values: own.map((o) => o.event_at) },
      ])}
      join message_events e on e.id = c.id and e.event_at = c.event_at
      where e.tenant_id = ${message.tenantId} and e.outbound_message_id is null
    ), linked as (
      update message_events e set outbound_message_id = ${message.id}, updated_at = now()
      from candidates c
      where e.id = c.id and e.event_at = c.event_at
        -- The rule of the store statement (API.md): any of its events while it is the only message with
        -- this id; where several share it, the recipient's.
        and (c.recipient = ${message.toAddress}
             or not exists (select 1 from outbound_messages o
               where o.tenant_id = ${message.tenantId} and o.provider = ${message.provider} and o.id <> ${message.id}
                 and o.provider_message_id = ${message.providerMessageId}))
      returning e.id, e.type, e.dedupe_key, e.provider, e.log_event_id, e.event_at
    ), logged as (
      -- Their message.* events in the log get the message too (they were appended before it was known).
      update events v set message_id = ${message.id}, contact_id = coalesce(v.contact_id, ${message.contactId})
      from linked l where v.id = l.log_event_id and v.ts = l.event_at
      returning 1
    )
    select id, type, dedupe_key, provider from linked`,
  );
  if (linked.length === 0) return;
  await recomputeStatus(executor, message.id);
  await stopCampaigns(
    executor,
    linked.map((e) => ({
      ...e,
      tenantId: message.tenantId,
      dedupeKey: e.dedupe_key,
      messageId: message.id,
      campaignId: message.campaignId,
    })),
  );
}

export async function getMessage(executor: Executor, tenantId: string, id: string) {
  const [row] = await executor
    .select()
    .from(outboundMessages)
    .where(and(eq(outboundMessages.tenantId, tenantId), eq(outboundMessages.id, id)));
  return row;
}

export async function listMessages(
  executor: Executor,
  tenantId: string,
  filter: { status?: MessageStatus | undefined; contactId?: string | undefined },
  limit: number,
  cursor: string | undefined,
): Promise<Page<OutboundMessage>> {
  const rows = await executor
    .select()
    .from(outboundMessages)
    .where(
      and(
        eq(outboundMessages.tenantId, tenantId),
        filter.status ? eq(outboundMessages.status, filter.status) : undefined,
        filter.contactId ? eq(outboundMessages.contactId, filter.contactId) : undefined,
        createdBefore(outboundMessages.createdAt, outboundMessages.id, cursor),
      ),
    )
    .orderBy(desc(outboundMessages.createdAt), desc(outboundMessages.id))
    .limit(limit + 1);
  return pageOf(rows, limit);
}
