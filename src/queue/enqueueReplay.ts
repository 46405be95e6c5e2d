import { type SQL, sql } from "drizzle-orm";
import { dueFor, handlerOf } from "./outbox.js";

/**
 * Queue stored events for delivery again: one outbox row, tagged `replayId`, per event of subscription
 * `subscriptionId` (of `tenantId`) matching its patterns and `filter` (conditions on the events `e`, each
 * starting with `and`), in log order. Returns one row with `n`, how many were queued. Pure: the caller runs
 * it in its transaction and wakes the claims (`notifyQueue`).
 */
export const enqueueReplay = (replayId: string, tenantId: string, subscriptionId: string, filter: SQL) =>
  sql`with queued as (
      insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type, ordering_key, max_attempts, replay_id,
        next_attempt_at, handler)
      select e.tenant_id, s.id, e.id, e.ts, e.event_type,
        case when s.ordered then coalesce(e.message_id::text, e.contact_id) end, s.max_attempts, ${replayId},
        ${dueFor("s")}, ${handlerOf("s")}
      from subscriptions s join events e on e.tenant_id = s.tenant_id
      where s.id = ${subscriptionId} and s.tenant_id = ${tenantId}
        and herald_event_type_matches(s.event_types, e.event_type)
        ${filter}
      order by e.transaction_id, e.position
      returning 1
    ) select count(*)::int as n from queued`;
