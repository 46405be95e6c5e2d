import { type SQL, sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { isoTextSql } from "../db/timestamps.js";
import { normalizeAddress } from "../domain/address.js";
import { decodeCursor, type Page, pageFrom } from "../domain/cursor.js";
import type { Channel } from "../domain/vocabularies.js";

/**
 * Reads of conversations: the list by last activity, one conversation, and its messages (inbound and
 * outbound merged, oldest first). Writes (threading, bumps) belong to the inbound worker.
 */

export interface ConversationView {
  id: string;
  channel: Channel;
  participants: string[];
  /** RFC 3339 with milliseconds. */
  lastActivityAt: string;
  messageCount: number;
  lastMessagePreview: string | null;
}

export interface ConversationFilter {
  channel?: Channel | undefined;
  /** The outside party's address, as given: normalized here (see `participantKey`). */
  participant?: string | undefined;
}

/** RFC 3339 UTC with milliseconds, as the API writes every time. */
const msTime = isoTextSql;
/** The same with microseconds, as PostgreSQL keeps them: a cursor's position. */
const usTime = (column: SQL) => sql`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

interface ConversationRow {
  id: string;
  channel: Channel;
  participants: string[];
  at: string;
  message_count: number;
  last_message_preview: string | null;
}

const columns = sql`c.id, c.channel, c.participants, ${usTime(sql`c.last_activity_at`)} as at, c.message_count,
  c.last_message_preview`;

const viewOf = (row: ConversationRow): ConversationView => ({
  id: row.id,
  channel: row.channel,
  participants: row.participants,
  lastActivityAt: `${row.at.slice(0, 23)}Z`,
  messageCount: row.message_count,
  lastMessagePreview: row.last_message_preview,
});

/**
 * The channel and normalized address a participant filter compares with `participant_address`. Without a
 * channel the address's shape decides: an email has an `@`, anything else is read as a phone number.
 */
export function participantKey(
  filter: ConversationFilter,
): { channel: Channel; address: string } | undefined {
  if (filter.participant === undefined) return undefined;
  const channel = filter.channel ?? (filter.participant.includes("@") ? "email" : "sms");
  return { channel, address: normalizeAddress(channel, filter.participant) };
}

/**
 * A tenant's conversations, most recent activity first, `limit` at a time.
 *
 * The cursor holds the last shown row's own `(last_activity_at, id)` at microsecond precision, and the next
 * page starts strictly below it — unlike the other lists (`db/keyset.ts`), it is not read back from the row,
 * whose activity moves. So a walk never shows a conversation twice: one bumped after it was shown moves above
 * the cursor and is not met again. A conversation bumped before the walk reached it moves above the cursor
 * too and is not met in that walk: it has new activity, which a walk started afterwards shows at the top.
 * Conversations not bumped during the walk are each shown exactly once, in order.
 *
 * The order is the activity index's own (`desc nulls last`), so the page is a walk of the index, not a sort.
 */
export async function listConversations(
  executor: Executor,
  tenantId: string,
  filter: ConversationFilter,
  limit: number,
  cursor: string | undefined,
): Promise<Page<ConversationView>> {
  const position = decodeCursor(cursor);
  const participant = participantKey(filter);
  const conditions = [
    sql`c.tenant_id = ${tenantId}`,
    participant
      ? sql`c.channel = ${participant.channel} and c.participant_address = ${participant.address}`
      : filter.channel
        ? sql`c.channel = ${filter.channel}`
        : undefined,
    position
      ? sql`(c.last_activity_at, c.id) < (${position.at}::timestamptz, ${position.id}::uuid)`
      : undefined,
  ].filter((c) => c !== undefined);
  const rows = await query<ConversationRow>(
    executor,
    sql`select ${columns} from conversations c where ${sql.join(conditions, sql` and `)}
      order by c.last_activity_at desc nulls last, c.id desc nulls last
      limit ${limit + 1}`,
    { prepare: true },
  );
  const page = pageFrom(rows, limit, (row) => ({ at: row.at, id: row.id }));
  return { items: page.items.map(viewOf), nextCursor: page.nextCursor };
}

/** One conversation of the tenant, or undefined (another tenant's too). */
export async function getConversation(
  executor: Executor,
  tenantId: string,
  id: string,
): Promise<ConversationView | undefined> {
  const [row] = await query<ConversationRow>(
    executor,
    sql`select ${columns} from conversations c where c.id = ${id}::uuid and c.tenant_id = ${tenantId}`,
    { prepare: true },
  );
  return row && viewOf(row);
}

export interface ConversationMessage {
  id: string;
  direction: "inbound" | "outbound";
  from: string | null;
  to: string;
  body: string | null;
  /** When it was received (inbound) or sent (outbound): RFC 3339 with milliseconds. */
  timestamp: string;
  /** Why it joined the conversation (`threadReasons`), null for a message stored before threading. */
  threadReason: string | null;
}

export interface MessagesPage {
  items: ConversationMessage[];
  /** Messages of the conversation, both directions. */
  total: number;
}

/**
 * Page `page` (from 1) of a conversation's messages, `pageSize` at a time, oldest first (ties by id), with
 * their total; undefined when the tenant has no such conversation.
 *
 * One statement: the conversation's row (the tenant check), the two counts and the page. Each table gives its
 * first `offset + pageSize` messages in order from its index (inbound by `(conversation_id, time, id)`,
 * outbound — the messages sent to the participant — by `(tenant, channel, to_address, time, id)`) and the two are
 * merged (a Merge Append): a page reads at most its offset and its own rows from each side, the counts read
 * index entries only. Without the limit on each side PostgreSQL 15 sorts the whole conversation instead.
 */
export async function conversationMessages(
  executor: Executor,
  tenantId: string,
  id: string,
  page: number,
  pageSize: number,
): Promise<MessagesPage | undefined> {
  const offset = (page - 1) * pageSize;
  const [row] = await query<{ total: number; items: ConversationMessage[] | string | null }>(
    executor,
    sql`select
        (select count(*) from inbound_messages i where i.conversation_id = c.id)::int
          + (select count(*) from outbound_messages o where o.tenant_id = c.tenant_id and o.channel = c.channel
            and o.to_address = c.participant_address)::int as total,
        (select json_agg(json_build_object('id', m.id, 'direction', m.direction, 'from', m.from_address,
            'to', m.to_address, 'body', m.body, 'timestamp', ${msTime(sql`m.at`)},
            'threadReason', m.thread_reason) order by m.at, m.id)
          from (
            select * from (
              (select i.id, 'inbound'::text as direction, i.from_address, i.to_address, i.body,
                i.received_at as at, i.thread_reason
              from inbound_messages i where i.conversation_id = c.id
              order by i.received_at, i.id limit ${offset + pageSize})
              union all
              (select o.id, 'outbound'::text, o.from_address, o.to_address, o.body, o.sent_at, o.thread_reason
              from outbound_messages o where o.tenant_id = c.tenant_id and o.channel = c.channel
                and o.to_address = c.participant_address
              order by o.sent_at, o.id limit ${offset + pageSize})
            ) u
            order by u.at, u.id
            limit ${pageSize} offset ${offset}
          ) m) as items
      from conversations c where c.id = ${id}::uuid and c.tenant_id = ${tenantId}`,
    { prepare: true },
  );
  if (!row) return undefined;
  // postgres.js parses json; PGlite may hand it over as text.
  const items = typeof row.items === "string" ? (JSON.parse(row.items) as ConversationMessage[]) : row.items;
  return { items: items ?? [], total: row.total };
}
