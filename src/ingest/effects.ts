import { sql } from "drizzle-orm";
import { lockKey, lockKeys } from "../db/advisoryLocks.js";
import { type Executor, query } from "../db/client.js";
import { type CanonicalEventType, statusOfEvent } from "../domain/messageStatus.js";
import type { StoredMessageEvent } from "./store.js";

/**
 * What newly stored provider events do, each a single statement over the whole batch, all run in the
 * transaction that stores the events (and acknowledges their delivery).
 */

/**
 * Move each message's status forward to the strongest status among its new events (see
 * domain/messageStatus.ts; `herald_status_rank` is the same table in SQL). Never moves one back.
 */
export async function advanceStatuses(
  executor: Executor,
  events: Pick<StoredMessageEvent, "messageId" | "type" | "eventAt">[],
): Promise<number> {
  const proposals = events.flatMap((e) => {
    const status = statusOfEvent[e.type];
    return e.messageId && status ? [{ message_id: e.messageId, status, at: e.eventAt.toISOString() }] : [];
  });
  if (proposals.length === 0) return 0;
  const rows = await query(
    executor,
    sql`with proposal as (
      select * from jsonb_to_recordset(${JSON.stringify(proposals)}::jsonb) as x(message_id uuid, status text, at timestamptz)
    ), best as (
      select distinct on (message_id) message_id, status, at from proposal
      order by message_id, herald_status_rank(status) desc, at desc, status collate "C" desc
    )
    update outbound_messages m set status = b.status, status_at = b.at, updated_at = now()
    from best b
    where m.id = b.message_id
      and (herald_status_rank(b.status), b.at, b.status collate "C") > (herald_status_rank(m.status), m.status_at, m.status collate "C")
    returning m.id`,
    { prepare: true },
  );
  return rows.length;
}

/** Recompute a message's status from every event linked to it (after orphans were linked to it). */
export async function recomputeStatus(executor: Executor, messageId: string): Promise<void> {
  const linked = await query<{ type: CanonicalEventType; event_ms: number }>(
    executor,
    sql`select type, extract(epoch from event_at) * 1000 as event_ms from message_events where outbound_message_id = ${messageId}`,
  );
  await advanceStatuses(
    executor,
    linked.map((e) => ({ messageId, type: e.type, eventAt: new Date(Number(e.event_ms)) })),
  );
}

const groupLockNamespace = 0x48475250; // "HGRP"

const suppressing = {
  bounce: "bounce",
  spamreport: "spamreport",
  unsubscribe: "unsubscribe",
  group_unsubscribe: "group_unsubscribe",
} as const;

/**
 * Hard bounces, spam reports, unsubscribes and group unsubscribes suppress the address (once: the unique
 * key absorbs repeats); a group resubscribe lifts that group's suppression if it is the later of the two —
 * event time decides, not arrival order, so replays and late deliveries converge. A group suppression keeps
 * the time of its latest unsubscribe for that comparison. After the groups' locks (below), two statements,
 * each only when it has rows (the events are already stored, so each sees the whole batch): adds skip an
 * unsubscribe older than a stored resubscribe; lifts remove a group suppression older than the resubscribe,
 * found through the unique key.
 */
export async function applySuppressions(executor: Executor, events: StoredMessageEvent[]): Promise<void> {
  const adds = events.flatMap((e) => {
    const reason = suppressing[e.type as keyof typeof suppressing];
    if (!reason || !e.recipient) return [];
    if (reason === "group_unsubscribe" && e.groupId === null) return [];
    return [
      {
        tenant_id: e.tenantId,
        address: e.recipient,
        reason,
        group_id: reason === "group_unsubscribe" ? e.groupId : null,
        event_id: e.id,
        at: e.eventAt.toISOString(),
      },
    ];
  });
  const lifts = events.flatMap((e) =>
    e.type === "group_resubscribe" && e.recipient && e.groupId !== null
      ? [{ tenant_id: e.tenantId, address: e.recipient, group_id: e.groupId, at: e.eventAt.toISOString() }]
      : [],
  );
  // A group's unsubscribe and later resubscribe, stored by two transactions at once, would each miss the
  // other's uncommitted row (the add its resubscribe, the lift its suppression) and leave the address
  // suppressed: each takes the lock of the address's group first, so the second to commit sees the first.
  await lockKeys(
    executor,
    groupLockNamespace,
    [...adds.filter((a) => a.reason === "group_unsubscribe"), ...lifts].map((g) =>
      lockKey(`${g.tenant_id}|${g.address}|${g.group_id}`),
    ),
    "exclusive",
  );
  if (adds.length > 0) {
    await query(
      executor,
      sql`with adds as (
        select distinct on (tenant_id, address, reason, group_id) *
        from jsonb_to_recordset(${JSON.stringify(adds)}::jsonb)
          as x(tenant_id uuid, address text, reason text, group_id int, event_id uuid, at timestamptz)
        order by tenant_id, address, reason, group_id, at desc
      )
      insert into communication_suppressions as s (tenant_id, channel, address, reason, group_id, source_event_id,
        source_event_at)
      select a.tenant_id, 'email', a.address, a.reason, a.group_id, a.event_id, a.at from adds a
      where a.reason <> 'group_unsubscribe' or not exists (
        select 1 from message_events r where r.tenant_id = a.tenant_id and r.type = 'group_resubscribe'
          and r.recipient = a.address and r.group_id = a.group_id and r.event_at > a.at)
      on conflict (tenant_id, channel, address, reason, group_id) do update
        set source_event_id = excluded.source_event_id, source_event_at = excluded.source_event_at,
          updated_at = now()
        where excluded.reason = 'group_unsubscribe' and s.source_event_at < excluded.source_event_at`,
      { prepare: true },
    );
  }
  if (lifts.length > 0) {
    await query(
      executor,
      sql`delete from communication_suppressions s
      using jsonb_to_recordset(${JSON.stringify(lifts)}::jsonb) as l(tenant_id uuid, address text, group_id int, at timestamptz)
      where s.tenant_id = l.tenant_id and s.channel = 'email' and s.address = l.address and s.reason = 'group_unsubscribe'
        and s.group_id = l.group_id and coalesce(s.source_event_at, '-infinity') < l.at`,
      { prepare: true },
    );
  }
}

/**
 * A bounce, spam report or unsubscribe of a message sent by a contact campaign stops that campaign, with a
 * `campaign_transitions` row naming the cause (the event's key: one transition per cause, ever).
 */
export async function stopCampaigns(
  executor: Executor,
  events: Pick<
    StoredMessageEvent,
    "tenantId" | "campaignId" | "type" | "provider" | "dedupeKey" | "messageId"
  >[],
): Promise<void> {
  const causes = events.flatMap((e) =>
    e.campaignId &&
    (e.type === "bounce" ||
      e.type === "spamreport" ||
      e.type === "unsubscribe" ||
      e.type === "group_unsubscribe")
      ? [
          {
            tenant_id: e.tenantId,
            campaign_id: e.campaignId,
            cause_key: `${e.provider}:${e.dedupeKey}`,
            reason: `${e.type} of message ${e.messageId}`,
          },
        ]
      : [],
  );
  if (causes.length === 0) return;
  await query(
    executor,
    sql`with cause as (
      select distinct on (campaign_id) * from jsonb_to_recordset(${JSON.stringify(causes)}::jsonb) as x(tenant_id uuid, campaign_id uuid, cause_key text, reason text)
      order by campaign_id, cause_key
    ), stopped as (
      update contact_campaigns c set status = 'stopped', stopped_at = now(), stop_reason = k.reason, updated_at = now()
      from cause k join contact_campaigns previous on previous.id = k.campaign_id
      where c.id = k.campaign_id and c.tenant_id = k.tenant_id and c.status not in ('stopped', 'completed')
      returning c.id, c.tenant_id, previous.status as before, k.cause_key, k.reason
    )
    insert into campaign_transitions (tenant_id, campaign_id, from_status, to_status, reason, cause_key)
    select tenant_id, id, before, 'stopped', reason, cause_key from stopped
    on conflict do nothing`,
    { prepare: true },
  );
}
