import { sql } from "drizzle-orm";
import { pgArray } from "../db/arrays.js";
import { type Executor, query } from "../db/client.js";
import type { Channel, ThreadReason } from "../domain/vocabularies.js";
import { writeEvents } from "../events/write.js";
import { conversationBucket, lockConversationBuckets } from "../messages/conversationLocks.js";
import { applySmsOptOut } from "../messages/suppressions.js";
import type { QueueRow } from "../queue/row.js";
import type { InboundPayload } from "./receive.js";

export interface ThreadedMessage {
  messageId: string;
  conversationId: string;
  threadReason: ThreadReason;
  channel: Channel;
}

/** Characters of a message's body kept as its conversation's preview. */
const previewLength = 200;

/**
 * Thread a chunk of claimed inbound events, in the caller's transaction (which also completes their queue
 * rows):
 *
 * 1. each event's conversation key: for an email whose `In-Reply-To` (first) or `References` (latest first)
 *    names the `Message-ID` of an outbound message of the tenant, that message's recipient; else the sender's
 *    address;
 * 2. the keys' conversation locks (`conversationLocks.ts`), all at once in ascending order (two chunks never
 *    wait for each other in a cycle), so registrations to those addresses take turns with this transaction
 *    and the counts below see them all;
 * 3. for each event in claim order, the conversation, upserted on its unique key (tenant, channel, participant
 *    address) — moved to the top and counted, or created counting the messages sent to the address before —
 *    so two workers threading messages of one pair at once meet on that key (the second waits for the
 *    first's row, then updates it): never two conversations for one pair;
 * 4. and the message, with why it joined (`reply_to_message`; `new` when step 3 created the conversation and
 *    nothing had been sent to the address; else `address_pair`).
 *
 * Steps 3 and 4 (one statement) happen only when the message is not stored yet, so processing an event again
 * changes nothing. Then, for an SMS that is a carrier keyword, the sender's opt-out is added or lifted and a
 * `contact.opted_out` / `contact.opted_in` event appended to the log, in the same transaction. The messages
 * threaded now (not those stored before) are returned.
 */
export async function threadInbound(
  executor: Executor,
  rows: readonly QueueRow[],
): Promise<ThreadedMessage[]> {
  const keyed = await Promise.all(rows.map((row) => keyOf(executor, row)));
  // Sent together (postgres.js pipelines a transaction's statements), run by the server in this order: the
  // locks first, then each event's statement in claim order; an opt-out goes out once its event's answer
  // is back, after them, in the same order.
  const [, ...messages] = await Promise.all([
    lockConversationBuckets(
      executor,
      keyed.map((k) => conversationBucket(k.tenantId, k.channel, k.participant)),
    ),
    ...keyed.map((k) => threadOne(executor, k)),
  ]);
  return messages.filter((m): m is ThreadedMessage => m !== undefined);
}

/** A claimed inbound event read, with the conversation key it threads under. */
interface Keyed {
  row: QueueRow;
  p: InboundPayload;
  tenantId: string;
  channel: Channel;
  providerMessageId: string;
  /** Whether it is an email reply to a known outbound message (whose recipient is `participant`). */
  reply: boolean;
  participant: string;
}

async function keyOf(executor: Executor, row: QueueRow): Promise<Keyed> {
  const p = (typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload) as InboundPayload;
  const tenantId = String(row.tenant_id);
  const channel = row.channel as Channel;
  // The ids a reply names, the most telling first: its In-Reply-To, then its References from the latest.
  const named =
    channel === "email"
      ? [
          ...new Set(
            [p.in_reply_to, ...[...p.references].reverse()].filter((id): id is string => Boolean(id)),
          ),
        ]
      : [];
  const replied = await repliedTo(executor, tenantId, channel, named);
  return {
    row,
    p,
    tenantId,
    channel,
    providerMessageId: String(row.provider_message_id),
    reply: replied !== undefined,
    participant: replied ?? p.from,
  };
}

/** Steps 3 and 4 and the opt-out of one event, its conversation's lock held. */
async function threadOne(executor: Executor, k: Keyed): Promise<ThreadedMessage | undefined> {
  const { row, p, tenantId, channel, providerMessageId, participant } = k;
  const [threaded] = await query<{ id: string; conversation_id: string; thread_reason: ThreadReason }>(
    executor,
    sql`with sent as (
      select count(*)::int as n, max(o.sent_at) as at from outbound_messages o
      where o.tenant_id = ${tenantId} and o.channel = ${channel} and o.to_address = ${participant}::text
    ), conv as (
      insert into conversations as c (tenant_id, channel, participant_address, participants, last_activity_at,
        message_count, last_message_preview)
      select ${tenantId}::uuid, ${channel}::text, ${participant}::text, array[${participant}::text],
        greatest(${p.received_at}::timestamptz, sent.at), 1 + sent.n, ${p.body.slice(0, previewLength)}::text
      from sent
      where not exists (select 1 from inbound_messages m where m.tenant_id = ${tenantId}
        and m.channel = ${channel} and m.provider_message_id = ${providerMessageId})
      on conflict (tenant_id, channel, participant_address) do update set
        last_activity_at = greatest(c.last_activity_at, ${p.received_at}::timestamptz),
        message_count = c.message_count + 1,
        last_message_preview = case when ${p.received_at}::timestamptz >= c.last_activity_at
          then excluded.last_message_preview else c.last_message_preview end,
        updated_at = now()
      returning c.id, (xmax = 0) as created, c.message_count
    )
    insert into inbound_messages (id, tenant_id, channel, provider, provider_message_id, from_address, to_address,
      subject, body, conversation_id, thread_reason, in_reply_to, reference_ids, metadata, received_at)
    select ${p.message_id}::uuid, ${tenantId}::uuid, ${channel}::text, ${String(row.provider)}::text,
      ${providerMessageId}::text, ${p.from}::text, ${p.to}::text, ${p.subject}::text, ${p.body}::text, conv.id,
      case when ${k.reply}::boolean then 'reply_to_message'
        when conv.created and conv.message_count = 1 then 'new' else 'address_pair' end,
      ${p.in_reply_to}::text, ${pgArray(p.references) ?? "{}"}::text[],
      ${JSON.stringify({ ...p.metadata, ...(p.keyword ? { keyword: p.keyword.keyword } : {}) })}::jsonb,
      ${p.received_at}::timestamptz
    from conv
    on conflict (tenant_id, channel, provider_message_id) do nothing
    returning id, conversation_id, thread_reason`,
    { prepare: true },
  );
  if (!threaded) return undefined;
  const action = p.keyword?.action;
  if (channel === "sms" && (action === "opt_out" || action === "opt_in")) {
    const at = new Date(p.received_at);
    await applySmsOptOut(executor, tenantId, p.from, action, at);
    await writeEvents(executor, [
      {
        tenantId,
        eventType: action === "opt_out" ? "contact.opted_out" : "contact.opted_in",
        source: "webhook",
        timestamp: at,
        eventKey: `inbound:${threaded.id}:${action}`,
        payload: {
          channel,
          address: p.from,
          keyword: p.keyword!.keyword,
          inbound_message_id: threaded.id,
          provider: String(row.provider),
        },
      },
    ]);
  }
  return {
    messageId: threaded.id,
    conversationId: threaded.conversation_id,
    threadReason: threaded.thread_reason,
    channel,
  };
}

/**
 * The recipient of the outbound message an email reply names (its `In-Reply-To` first, then its `References`
 * from the latest; the latest message where several carry one id), whose conversation the reply joins.
 */
async function repliedTo(
  executor: Executor,
  tenantId: string,
  channel: Channel,
  named: string[],
): Promise<string | undefined> {
  if (named.length === 0) return undefined;
  const [reply] = await query<{ to_address: string }>(
    executor,
    sql`select o.to_address from outbound_messages o
      where o.tenant_id = ${tenantId} and o.channel = ${channel} and o.email_message_id = any(${pgArray(named)}::text[])
      order by array_position(${pgArray(named)}::text[], o.email_message_id), o.created_at desc
      limit 1`,
    { prepare: true },
  );
  return reply?.to_address;
}
