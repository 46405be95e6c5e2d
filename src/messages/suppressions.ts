import { and, eq, or, sql } from "drizzle-orm";
import { lockKey, lockKeys } from "../db/advisoryLocks.js";
import { type Executor, query } from "../db/client.js";
import { createdBefore, pageOf } from "../db/keyset.js";
import { communicationSuppressions } from "../db/schema/index.js";
import { normalizeAddress } from "../domain/address.js";
import type { Channel, SuppressionReason } from "../domain/vocabularies.js";
import type { StoredMessageEvent } from "./storeEvents.js";

export interface SuppressionFilter {
  channel?: Channel | undefined;
  address?: string | undefined;
  reason?: SuppressionReason | undefined;
}

/** The address as stored for its channel; without one, as an email or as a phone number. */
const addressIs = (address: string, channel: Channel | undefined) =>
  channel
    ? eq(communicationSuppressions.address, normalizeAddress(channel, address))
    : or(
        ...(["email", "sms"] as const).map((c) =>
          and(
            eq(communicationSuppressions.channel, c),
            eq(communicationSuppressions.address, normalizeAddress(c, address)),
          ),
        ),
      );

const byFilter = (tenantId: string, f: SuppressionFilter) =>
  and(
    eq(communicationSuppressions.tenantId, tenantId),
    f.channel ? eq(communicationSuppressions.channel, f.channel) : undefined,
    f.address ? addressIs(f.address, f.channel) : undefined,
    f.reason ? eq(communicationSuppressions.reason, f.reason) : undefined,
  );

export async function listSuppressions(
  executor: Executor,
  tenantId: string,
  filter: SuppressionFilter,
  limit: number,
  cursor: string | undefined,
) {
  const rows = await executor
    .select()
    .from(communicationSuppressions)
    .where(
      and(
        byFilter(tenantId, filter),
        createdBefore(communicationSuppressions.createdAt, communicationSuppressions.id, cursor),
      ),
    )
    // The list index is (tenant, created_at desc nulls last, id desc nulls last): the same order walks it.
    .orderBy(
      sql`${communicationSuppressions.createdAt} desc nulls last, ${communicationSuppressions.id} desc nulls last`,
    )
    .limit(limit + 1);
  return pageOf(rows, limit);
}

/**
 * Whether an address may not be sent to, and why: the reasons (API.md's values), and the groups it is
 * unsubscribed from when one of them is `group_unsubscribe`.
 */
export async function checkSuppression(
  executor: Executor,
  tenantId: string,
  channel: Channel,
  address: string,
) {
  const rows = await executor
    .select({ reason: communicationSuppressions.reason, groupId: communicationSuppressions.groupId })
    .from(communicationSuppressions)
    .where(byFilter(tenantId, { channel, address }));
  return {
    suppressed: rows.length > 0,
    reasons: [...new Set(rows.map((r) => r.reason))],
    group_ids: rows.flatMap((r) => (r.groupId === null ? [] : [r.groupId])).sort((a, b) => a - b),
  };
}

export async function addManualSuppression(
  executor: Executor,
  tenantId: string,
  channel: Channel,
  address: string,
) {
  const values = {
    tenantId,
    channel,
    address: normalizeAddress(channel, address),
    reason: "manual" as const,
  };
  const [row] = await executor
    .insert(communicationSuppressions)
    .values(values)
    .onConflictDoNothing()
    .returning();
  if (row) return row;
  const [existing] = await executor
    .select()
    .from(communicationSuppressions)
    .where(and(byFilter(tenantId, { channel, address }), eq(communicationSuppressions.reason, "manual")));
  return existing!;
}

export async function deleteSuppression(executor: Executor, tenantId: string, id: string): Promise<boolean> {
  const rows = await executor
    .delete(communicationSuppressions)
    .where(and(eq(communicationSuppressions.tenantId, tenantId), eq(communicationSuppressions.id, id)))
    .returning({ id: communicationSuppressions.id });
  return rows.length > 0;
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
 * An inbound SMS that was a carrier keyword (domain/optOut.ts), in the caller's transaction: an opt-out adds
 * the sender's `sms` suppression with reason `opt_out` (once: the unique key absorbs repeats), an opt-in lifts
 * it when it is older than the opt-in (so a STOP and a START processed out of order end as they were sent).
 */
export async function applySmsOptOut(
  executor: Executor,
  tenantId: string,
  address: string,
  action: "opt_out" | "opt_in",
  at: Date,
): Promise<void> {
  const phone = normalizeAddress("sms", address);
  if (action === "opt_out")
    await query(
      executor,
      sql`insert into communication_suppressions as s (tenant_id, channel, address, reason, source_event_at)
            values (${tenantId}, 'sms', ${phone}, 'opt_out', ${at.toISOString()}::timestamptz)
            on conflict (tenant_id, channel, address, reason, group_id) do update
              set source_event_at = excluded.source_event_at, updated_at = now()
              where s.source_event_at < excluded.source_event_at`,
    );
  else
    await query(
      executor,
      sql`delete from communication_suppressions
            where tenant_id = ${tenantId} and channel = 'sms' and address = ${phone} and reason = 'opt_out'
              and coalesce(source_event_at, '-infinity') <= ${at.toISOString()}::timestamptz`,
    );
}
