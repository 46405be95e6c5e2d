import { getTableColumns, sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { pgArray, type Scalar, unnestColumns } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import { type OutboundMessage, outboundMessages } from "../db/schema/index.js";
import { normalizeAddress } from "../domain/address.js";
import { linkPrefixLengths, messageIdOf } from "../domain/messageIds.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
import type { Channel } from "../domain/vocabularies.js";
import { HeraldError } from "../errors.js";
import { stopCampaigns } from "./campaigns.js";
import { conversationBucket, lockConversationBuckets } from "./conversationLocks.js";
import { messageOfProviderId } from "./linking.js";
import { lockOrphanBuckets, orphanBucket } from "./orphanLocks.js";
import { advanceStatuses } from "./status.js";

export interface NewMessage {
  channel: Channel;
  provider: string;
  to: string;
  providerMessageId?: string | undefined;
  from?: string | undefined;
  subject?: string | undefined;
  /** The RFC 5322 `Message-ID` an email was sent with (angle brackets optional): replies thread by it. */
  emailMessageId?: string | undefined;
  contactId?: string | undefined;
  campaignId?: string | undefined;
  dedupeKey?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  sentAt?: Date | undefined;
}

export interface Registered {
  message: OutboundMessage;
  /** False when its dedupe key named a message already stored (or an earlier one of the same batch). */
  created: boolean;
}

/**
 * Register a sent message (idempotent on `dedupe_key`: the same key returns the stored message). Events that
 * arrived before it — stored unlinked — are linked now, its status moved by them, and a campaign it belongs
 * to stopped if one of them says so. The batch path with a batch of one.
 */
export async function registerMessage(
  executor: Executor,
  tenantId: string,
  input: NewMessage,
): Promise<Registered> {
  const [registered] = await registerBatch(executor, tenantId, [input]);
  return registered!;
}

/** Register a batch of messages in the caller's transaction; the messages in input order. */
export async function registerMessages(
  executor: Executor,
  tenantId: string,
  inputs: NewMessage[],
): Promise<OutboundMessage[]> {
  return (await registerBatch(executor, tenantId, inputs)).map((r) => r.message);
}

/**
 * Set-based, in the caller's transaction, a constant number of statements whatever the batch's size:
 *
 * 1. (with campaign ids) one check that the campaigns are the tenant's;
 * 2. the link locks of every message, in ascending order as processors take theirs (so two batches, or a
 *    batch and a processor, never wait for each other in a cycle), then the locks of the recipients'
 *    conversations (`conversationLocks.ts`);
 * 3. one insert of the whole batch (`unnest`, in dedupe-key order so concurrent batches sharing keys never
 *    deadlock; a key already stored, or repeated within the batch, inserts nothing), which also moves the
 *    recipients' conversations that exist and returns the
 *    unlinked events waiting for the new messages' ids: every message is stored before any links its events,
 *    so where several messages of one batch share an id, each gets its own recipient's;
 * 4. (with waiting events) one statement linking them, by the same rule as the events' store statement, to
 *    the new messages (their `message.*` events in the log too); then one status advance for the batch and,
 *    for a bounce, spam report or unsubscribe of a campaign's message, one campaign stop;
 * 5. only when some were linked or a dedupe key named a stored message, one read of the messages as they
 *    now stand (statuses moved, keys resolved: a new snapshot, so a key committed by a concurrent
 *    registration is seen). Otherwise the insert's own rows are the answer: a single registration is
 *    then the locks and the insert.
 */
async function registerBatch(
  executor: Executor,
  tenantId: string,
  given: NewMessage[],
): Promise<Registered[]> {
  if (given.length === 0) return [];
  // A provider id as an RFC 5322 message id (Mailgun's send API answers `<…@domain>`, its events carry it
  // bare): stored without the angle brackets, as events give it.
  const inputs = given.map((input) =>
    input.providerMessageId?.startsWith("<")
      ? { ...input, providerMessageId: messageIdOf(input.providerMessageId) }
      : input,
  );
  await checkCampaigns(executor, tenantId, inputs);
  const addresses = inputs.map((input) => normalizeAddress(input.channel, input.to));
  const lockedOrphans = lockOrphanBuckets(
    executor,
    inputs.map((input) => orphanBucket(tenantId, input.provider, input.providerMessageId)),
    "exclusive",
  );
  const lockedConversations = lockConversationBuckets(
    executor,
    inputs.map((input, at) => conversationBucket(tenantId, input.channel, addresses[at]!)),
  );
  const ids = inputs.map(() => uuidv7());
  // Sent together (postgres.js pipelines a transaction's statements); the server takes the locks first.
  const [, , { inserted, waiting }] = await Promise.all([
    lockedOrphans,
    lockedConversations,
    insertBatch(executor, tenantId, inputs, addresses, ids),
  ]);
  const linked = waiting.length > 0 && (await linkWaiting(executor, tenantId, waiting, [...inserted.keys()]));
  if (!linked && inserted.size === inputs.length)
    return ids.map((id) => ({ message: inserted.get(id)!, created: true }));
  return readBack(executor, tenantId, inputs, ids, new Set(inserted.keys()));
}

/** A foreign key does not see tenants: make sure each campaign is this tenant's (one statement). */
async function checkCampaigns(executor: Executor, tenantId: string, inputs: NewMessage[]) {
  const campaignIds = [...new Set(inputs.flatMap((i) => (i.campaignId ? [i.campaignId] : [])))];
  if (campaignIds.length === 0) return;
  const found = await query<{ id: string }>(
    executor,
    sql`select id from contact_campaigns where tenant_id = ${tenantId} and id = any(${pgArray(campaignIds)}::uuid[])`,
  );
  if (found.length < campaignIds.length) {
    throw new HeraldError("validation_failed", "campaign_id is not a campaign of this tenant", [
      { path: "/body/campaign_id", message: "unknown campaign" },
    ]);
  }
}

interface Waiting {
  id: string;
  event_at: string;
  provider_message_id: string;
}

/** A row of `outbound_messages` as `row_to_json` gives it, read as Drizzle reads the table's columns. */
const columns = Object.entries(getTableColumns(outboundMessages));
const messageOfJson = (json: Record<string, unknown>) =>
  Object.fromEntries(
    columns.map(([key, column]) => {
      const value = json[column.name];
      return [key, value === null || value === undefined ? null : column.mapFromDriverValue(value)];
    }),
  ) as OutboundMessage;

/** A JSON column as the driver gives it: parsed (postgres.js, PGlite), or text. */
const parsed = <T>(value: T[] | string | null | undefined): T[] =>
  typeof value === "string" ? (JSON.parse(value) as T[]) : (value ?? []);

/**
 * Insert the batch; the messages inserted (by id), and the unlinked events that a new message's id links
 * (equal, or a prefix followed by "."): found through the unlinked index on their id's root. Both in one
 * row, to spare a round trip.
 */
async function insertBatch(
  executor: Executor,
  tenantId: string,
  inputs: NewMessage[],
  addresses: string[],
  ids: string[],
): Promise<{ inserted: Map<string, OutboundMessage>; waiting: Waiting[] }> {
  const column = (pick: (input: NewMessage) => Scalar) => inputs.map(pick);
  const [row] = await query<{
    inserted: Record<string, unknown>[] | string | null;
    waiting: Waiting[] | string | null;
  }>(
    executor,
    sql`with input as (
      select x.* from ${unnestColumns("x", [
        { name: "id", type: "uuid", values: ids },
        { name: "channel", type: "text", values: column((i) => i.channel) },
        { name: "provider", type: "text", values: column((i) => i.provider) },
        { name: "to_address", type: "text", values: addresses },
        { name: "provider_message_id", type: "text", values: column((i) => i.providerMessageId) },
        { name: "from_address", type: "text", values: column((i) => i.from) },
        { name: "subject", type: "text", values: column((i) => i.subject) },
        { name: "email_message_id", type: "text", values: column((i) => messageIdOf(i.emailMessageId)) },
        { name: "contact_id", type: "text", values: column((i) => i.contactId) },
        { name: "campaign_id", type: "uuid", values: column((i) => i.campaignId) },
        { name: "dedupe_key", type: "text", values: column((i) => i.dedupeKey) },
        { name: "sent_at", type: "timestamptz", values: column((i) => i.sentAt?.toISOString()) },
        { name: "metadata", type: "json", json: inputs.map((i) => i.metadata ?? {}) },
      ])}
    ), moved as (
      -- The conversations of the batch's recipients that exist (the first inbound message from an address
      -- creates one), moved to the top and counted. Their buckets' locks are held: no other registration or
      -- inbound message moves them meanwhile. Messages whose dedupe key is already stored are not counted; a
      -- registration racing another with the same new key may count one too many.
      update conversations c set last_activity_at = greatest(c.last_activity_at, r.at),
        message_count = c.message_count + r.n, updated_at = now()
      from (
        select i.channel, i.to_address, max(coalesce(i.sent_at, now())) as at,
          count(distinct coalesce(i.dedupe_key, i.id::text))::int as n
        from input i
        -- A probe of the dedupe key's unique index per message: a scalar subquery, which the planner cannot
        -- turn into a hash of all the tenant's messages (as it does with "not exists" beside an "or", or an
        -- anti-join when its statistics think the tenant has few).
        where i.dedupe_key is null or (select o.id from outbound_messages o
          where o.tenant_id = ${tenantId} and o.dedupe_key = i.dedupe_key limit 1) is null
        group by i.channel, i.to_address
      ) r
      where c.tenant_id = ${tenantId} and c.channel = r.channel and c.participant_address = r.to_address
      returning 1
    ), inserted as (
      insert into outbound_messages (id, tenant_id, channel, provider, to_address, provider_message_id,
        from_address, subject, email_message_id, contact_id, campaign_id, dedupe_key, metadata, sent_at, status_at,
        thread_reason)
      select input.id, ${tenantId}, input.channel, provider, to_address, provider_message_id, from_address,
        subject, email_message_id, contact_id, campaign_id, dedupe_key, metadata::jsonb, coalesce(sent_at, now()),
        coalesce(sent_at, now()), 'outbound'
      from input
      -- Key order, as the events' store statement: concurrent batches sharing keys never wait in a cycle. The
      -- first of a key repeated within the batch is inserted; the others conflict with it and insert nothing.
      order by dedupe_key, ord
      on conflict do nothing
      returning *
    ), waiting as (
      select e.id, e.event_at::text as event_at, e.provider_message_id
      from message_events e
      where e.tenant_id = ${tenantId} and e.outbound_message_id is null
        and split_part(e.provider_message_id, '.', 1) in (
          select split_part(provider_message_id, '.', 1) from inserted where provider_message_id is not null)
        and exists (select 1 from inserted n where n.provider = e.provider
          and (e.provider_message_id = n.provider_message_id
               or starts_with(e.provider_message_id, n.provider_message_id || '.')))
    )
    select (select json_agg(row_to_json(m)) from inserted m) as inserted,
      (select json_agg(row_to_json(w)) from waiting w) as waiting`,
    { prepare: true },
  );
  const inserted = new Map(
    parsed(row?.inserted).map((json) => [json.id as string, messageOfJson(json)] as const),
  );
  return { inserted, waiting: parsed(row?.waiting) };
}

/**
 * Link the waiting events to the new messages (whether any was), by the rule an event stored now would be linked by (the
 * longest registered id, the recipient where several messages share it), leaving those that rule gives to
 * an older message or to none. Their `message.*` events in the log get the message too (they were appended
 * before it was known). Then the statuses and campaigns, each one statement for the batch.
 */
async function linkWaiting(
  executor: Executor,
  tenantId: string,
  waiting: Waiting[],
  newIds: string[],
): Promise<boolean> {
  const linked = await query<{
    message_id: string;
    campaign_id: string | null;
    type: CanonicalEventType;
    dedupe_key: string;
    provider: string;
    event_ms: number;
  }>(
    executor,
    sql`with i as (
      select e.id, e.event_at, e.tenant_id, e.provider, e.provider_message_id, e.recipient, c.link_lengths
      from ${unnestColumns("c", [
        { name: "id", type: "uuid", values: waiting.map((w) => w.id) },
        { name: "event_at", type: "timestamptz", values: waiting.map((w) => w.event_at) },
        {
          name: "link_lengths",
          type: "text",
          values: waiting.map((w) => pgArray(linkPrefixLengths(w.provider_message_id))),
        },
      ])}
      join message_events e on e.id = c.id and e.event_at = c.event_at
      where e.tenant_id = ${tenantId} and e.outbound_message_id is null
    ), chosen as (
      select i.id, i.event_at, ${messageOfProviderId} as message_id from i
    ), linked as (
      update message_events e set outbound_message_id = c.message_id
      from chosen c
      where e.id = c.id and e.event_at = c.event_at and c.message_id = any(${pgArray(newIds)}::uuid[])
      returning e.id, e.outbound_message_id, e.type, e.dedupe_key, e.provider, e.log_event_id, e.event_at
    ), logged as (
      update events v set message_id = m.id, contact_id = coalesce(v.contact_id, m.contact_id)
      from linked l join outbound_messages m on m.id = l.outbound_message_id
      -- Its log event: named by \`log_event_id\` before migration 0031, since then its own id.
      where v.id = coalesce(l.log_event_id, l.id) and v.ts = l.event_at
      returning 1
    )
    select l.outbound_message_id as message_id, m.campaign_id, l.type, l.dedupe_key, l.provider,
      extract(epoch from l.event_at) * 1000 as event_ms
    from linked l join outbound_messages m on m.id = l.outbound_message_id`,
  );
  if (linked.length === 0) return false;
  // A new message's linked events are all among these (a processor storing more waits for its link lock).
  await advanceStatuses(
    executor,
    linked.map((e) => ({ messageId: e.message_id, type: e.type, eventAt: new Date(Number(e.event_ms)) })),
  );
  await stopCampaigns(
    executor,
    linked.map((e) => ({
      tenantId,
      campaignId: e.campaign_id,
      type: e.type,
      provider: e.provider,
      dedupeKey: e.dedupe_key,
      messageId: e.message_id,
    })),
  );
  return true;
}

/**
 * The batch's messages as they now stand, in input order: each new one by its id, each other by its dedupe
 * key (stored before, or by an earlier message of the batch).
 */
async function readBack(
  executor: Executor,
  tenantId: string,
  inputs: NewMessage[],
  ids: string[],
  inserted: Set<string>,
): Promise<Registered[]> {
  const keys = inputs.flatMap((input, at) =>
    inserted.has(ids[at]!) || input.dedupeKey === undefined ? [] : [input.dedupeKey],
  );
  const rows = await executor
    .select()
    .from(outboundMessages)
    .where(
      sql`${outboundMessages.tenantId} = ${tenantId} and (${outboundMessages.id} = any(${pgArray([...inserted])}::uuid[])
        or ${outboundMessages.dedupeKey} = any(${pgArray(keys)}::text[]))`,
    );
  const byId = new Map(rows.map((m) => [m.id, m]));
  const byKey = new Map(rows.flatMap((m) => (m.dedupeKey === null ? [] : [[m.dedupeKey, m] as const])));
  return inputs.map((input, at) => {
    const id = ids[at]!;
    if (inserted.has(id)) return { message: byId.get(id)!, created: true };
    const existing = input.dedupeKey === undefined ? undefined : byKey.get(input.dedupeKey);
    if (!existing) throw new Error("message insert conflicted but no message holds its dedupe key");
    return { message: existing, created: false };
  });
}
