import { type SQL, sql } from "drizzle-orm";
import type { Channel } from "../domain/vocabularies.js";

/** One received inbound message, as queued for threading. */
export interface QueuedInbound {
  tenantId: string;
  channel: Channel;
  provider: string;
  providerMessageId: string;
  payload: Record<string, unknown>;
  maxAttempts: number;
}

/**
 * Queue an inbound message once per tenant + channel + provider message id: the unique key absorbs repeats
 * (a copy that races the first waits for its commit, then inserts nothing). Returns the new row's `id` and
 * its payload, or — for a repeat already committed before this statement began — the stored row's, with
 * `duplicate` true. No row at all means the first copy committed while this statement ran: read it with
 * `storedInbound`. `onlyIf` (a boolean SQL expression, e.g. that the caller's API key is live) guards the
 * whole statement: false, it inserts nothing and returns one row with `allowed` false. Pure: the caller runs
 * it and wakes the workers once it has committed (`QueueWakeups`).
 */
export const enqueueInbound = (q: QueuedInbound, onlyIf?: SQL) =>
  sql`with guard as (select ${onlyIf ?? sql`true`} as allowed),
    inserted as (
      insert into inbound_events (tenant_id, channel, provider, provider_message_id, payload, status, max_attempts)
      select ${q.tenantId}::uuid, ${q.channel}::text, ${q.provider}::text, ${q.providerMessageId}::text,
        ${JSON.stringify(q.payload)}::jsonb,
        'pending', ${q.maxAttempts}::int
      from guard where guard.allowed
      on conflict (tenant_id, channel, provider_message_id) do nothing
      returning id, payload
    )
    select id, payload, false as duplicate, true as allowed from inserted
    union all
    select e.id, e.payload, true as duplicate, true as allowed from inbound_events e, guard
    where guard.allowed and e.tenant_id = ${q.tenantId}::uuid and e.channel = ${q.channel}::text
      and e.provider_message_id = ${q.providerMessageId}::text and not exists (select 1 from inserted)
    union all
    select null::bigint, null::jsonb, false, false from guard where not guard.allowed`;

/** The stored row of an inbound message (see `enqueueInbound`). */
export const storedInbound = (q: Pick<QueuedInbound, "tenantId" | "channel" | "providerMessageId">) =>
  sql`select id, payload, true as duplicate from inbound_events
    where tenant_id = ${q.tenantId} and channel = ${q.channel} and provider_message_id = ${q.providerMessageId}`;

/**
 * Make dead inbound events pending again with fresh attempts, due now. `ids` is an SQL expression of type
 * bigint[] (undefined: all of the tenant's); returns the `id` of each row revived. Pure: the caller runs it and wakes the workers.
 */
export const retryDeadInbound = (tenantId: string, ids: SQL | undefined) =>
  sql`update inbound_events set status = 'pending', attempts = 0, next_attempt_at = now(), last_error = null,
      locked_by = null, locked_until = null, updated_at = now()
    where tenant_id = ${tenantId} and status = 'dead' ${ids ? sql`and id = any(${ids})` : sql``}
    returning id`;
