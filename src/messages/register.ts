import { getTableColumns, type SQL, sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { pgArray, type Scalar, unnestColumns } from "../db/arrays.js";
import { type Db, type Executor, query } from "../db/client.js";
import { errorCode } from "../db/errors.js";
import { type OutboundMessage, outboundMessages } from "../db/schema/index.js";
import { normalizeAddress } from "../domain/address.js";
import { linkPrefixLengths, messageIdOf } from "../domain/messageIds.js";
import type { CanonicalEventType } from "../domain/messageStatus.js";
import type { Channel } from "../domain/vocabularies.js";
import { HeraldError } from "../errors.js";
import { stopCampaigns } from "./campaigns.js";
import { conversationBucket, conversationLockNamespace } from "./conversationLocks.js";
import { messageOfProviderId } from "./linking.js";
import { orphanBucket, orphanLockNamespace } from "./orphanLocks.js";
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
 * to stopped if one of them says so. The batch path with a batch of one, in the caller's transaction.
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

/** `registerAlone`'s answer when events wait for the message: register it with `registerMessage` instead. */
export const needsTransaction = Symbol("needsTransaction");

/**
 * Register one message as one statement outside any transaction, run only if `onlyIf` holds (undefined when
 * it did not): the common case, where no event waits for the message, in one round trip. When events wait,
 * nothing is kept and the answer is `needsTransaction`: linking them must commit with the message.
 */
export async function registerAlone(
  db: Db,
  tenantId: string,
  input: NewMessage,
  onlyIf?: SQL,
): Promise<Registered | undefined | typeof needsTransaction> {
  const inputs = [stored(input)];
  const ids = [uuidv7()];
  const call = registerCall(tenantId, inputs, ids, true);
  let answer: Answer | undefined;
  try {
    [answer] = await query<Answer>(db, onlyIf === undefined ? call : sql`${call} where ${onlyIf}`, {
      prepare: true,
    });
  } catch (error) {
    if (errorCode(error) === eventsWaiting) return needsTransaction;
    throw refusal(error);
  }
  if (answer === undefined) return undefined;
  const { inserted, existing } = rowsOf(answer);
  return resolve(inputs, ids, inserted, existing)[0];
}

/**
 * Set-based, in the caller's transaction, a constant number of statements whatever the batch's size:
 *
 * 1. one call of `herald_register_messages` (migration 0036): the check that the campaigns are the tenant's;
 *    the link locks of every message, in ascending order as processors take theirs (so two batches, or a
 *    batch and a processor, never wait for each other in a cycle), then the locks of the recipients'
 *    conversations (`conversationLocks.ts`); one insert of the whole batch (in dedupe-key order so concurrent
 *    batches sharing keys never deadlock; a key already stored, or repeated within the batch, inserts
 *    nothing), which also moves the recipients' conversations that exist; the unlinked events waiting for the
 *    new messages' ids (every message is stored before any links its events, so where several messages of
 *    one batch share an id, each gets its own recipient's); the stored messages of dedupe keys that inserted
 *    nothing;
 * 2. (with waiting events) one statement linking them, by the same rule as the events' store statement, to
 *    the new messages (their `message.*` events in the log too); then one status advance for the batch and,
 *    for a bounce, spam report or unsubscribe of a campaign's message, one campaign stop, and one read of
 *    the messages as they now stand.
 */
async function registerBatch(
  executor: Executor,
  tenantId: string,
  given: NewMessage[],
): Promise<Registered[]> {
  if (given.length === 0) return [];
  const inputs = given.map(stored);
  const ids = inputs.map(() => uuidv7());
  let answer: Answer;
  try {
    [answer] = (await query<Answer>(executor, registerCall(tenantId, inputs, ids, false), {
      prepare: true,
    })) as [Answer];
  } catch (error) {
    throw refusal(error);
  }
  const { inserted, waiting, existing } = rowsOf(answer);
  if (
    waiting.length > 0 &&
    (await linkWaiting(
      executor,
      tenantId,
      waiting,
      inserted.map((m) => m.id),
    ))
  ) {
    return readBack(executor, tenantId, inputs, ids, new Set(inserted.map((m) => m.id)));
  }
  return resolve(inputs, ids, inserted, existing);
}

/**
 * A provider id as an RFC 5322 message id (Mailgun's send API answers `<…@domain>`, its events carry it
 * bare): stored without the angle brackets, as events give it.
 */
const stored = (input: NewMessage): NewMessage =>
  input.providerMessageId?.startsWith("<")
    ? { ...input, providerMessageId: messageIdOf(input.providerMessageId) }
    : input;

/** SQLSTATEs `herald_register_messages` raises. */
const foreignCampaign = "HR001";
const eventsWaiting = "HR002";

/** The database's refusal of a campaign as the API's error; any other error as it is. */
function refusal(error: unknown): unknown {
  if (errorCode(error) !== foreignCampaign) return error;
  return new HeraldError("validation_failed", "campaign_id is not a campaign of this tenant", [
    { path: "/body/campaign_id", message: "unknown campaign" },
  ]);
}

/** The call of `herald_register_messages` for a batch (one text whatever the batch: prepared). */
function registerCall(tenantId: string, inputs: NewMessage[], ids: string[], alone: boolean): SQL {
  const column = (pick: (input: NewMessage) => Scalar) => pgArray(inputs.map(pick));
  const campaigns = [...new Set(inputs.flatMap((i) => (i.campaignId ? [i.campaignId] : [])))];
  const addresses = inputs.map((input) => normalizeAddress(input.channel, input.to));
  return sql`select herald_register_messages(${tenantId}, ${pgArray(campaigns)}::uuid[],
    ${orphanLockNamespace}::int, ${column((i) => orphanBucket(tenantId, i.provider, i.providerMessageId))}::int[],
    ${conversationLockNamespace}::int,
    ${pgArray(inputs.map((i, at) => conversationBucket(tenantId, i.channel, addresses[at]!)))}::int[],
    ${alone}, ${pgArray(ids)}::uuid[], ${column((i) => i.channel)}::text[], ${column((i) => i.provider)}::text[],
    ${pgArray(addresses)}::text[], ${column((i) => i.providerMessageId)}::text[], ${column((i) => i.from)}::text[],
    ${column((i) => i.subject)}::text[], ${column((i) => messageIdOf(i.emailMessageId))}::text[],
    ${column((i) => i.contactId)}::text[], ${column((i) => i.campaignId)}::uuid[],
    ${column((i) => i.dedupeKey)}::text[], ${column((i) => i.sentAt?.toISOString())}::timestamptz[],
    ${JSON.stringify(inputs.map((i) => i.metadata ?? {}))}::json) as answer`;
}

interface Waiting {
  id: string;
  event_at: string;
  provider_message_id: string;
}

type Rows<T> = T[] | string | null | undefined;

/** `herald_register_messages`'s answer: JSON, parsed by the driver (postgres.js, PGlite) or text. */
interface Answer {
  answer:
    | {
        inserted: Rows<Record<string, unknown>>;
        waiting: Rows<Waiting>;
        existing: Rows<Record<string, unknown>>;
      }
    | string;
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

/** A JSON array as the driver gives it: parsed, or text. */
const parsed = <T>(value: Rows<T>): T[] =>
  typeof value === "string" ? (JSON.parse(value) as T[]) : (value ?? []);

function rowsOf({ answer }: Answer) {
  const json =
    typeof answer === "string" ? (JSON.parse(answer) as Exclude<Answer["answer"], string>) : answer;
  return {
    inserted: parsed(json.inserted).map(messageOfJson),
    waiting: parsed(json.waiting),
    existing: parsed(json.existing).map(messageOfJson),
  };
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

/** The batch's messages as they now stand (statuses moved by the events just linked), in input order. */
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
  return resolve(
    inputs,
    ids,
    rows.filter((m) => inserted.has(m.id)),
    rows,
  );
}

/**
 * The batch's messages in input order: each new one by its id among `inserted`, each other by its dedupe key
 * among `existing` (stored before, or by an earlier message of the batch).
 */
function resolve(
  inputs: NewMessage[],
  ids: string[],
  inserted: OutboundMessage[],
  existing: OutboundMessage[],
): Registered[] {
  const byId = new Map(inserted.map((m) => [m.id, m]));
  const byKey = new Map(existing.flatMap((m) => (m.dedupeKey === null ? [] : [[m.dedupeKey, m] as const])));
  return inputs.map((input, at) => {
    const message = byId.get(ids[at]!);
    if (message) return { message, created: true };
    const stored = input.dedupeKey === undefined ? undefined : byKey.get(input.dedupeKey);
    if (!stored) throw new Error("message insert conflicted but no message holds its dedupe key");
    return { message: stored, created: false };
  });
}
