import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { type Executor, query } from "../db/client.js";
import { notifyQueue } from "../queue/enqueue.js";
import { dueFor, handlerOf } from "../queue/outbox.js";
import { outboxQueue } from "./outboxQueue.js";

export interface ReplayFilter {
  tenantId: string;
  subscriptionId: string;
  /** Inclusive. */
  start?: Date | undefined;
  /** Exclusive. */
  end?: Date | undefined;
  /** Patterns (`message.*`); the subscription's own patterns always apply too. */
  eventTypes?: string[] | undefined;
  correlationId?: string | undefined;
  /** Groups the rows of one replay run done in several windows. */
  replayId?: string | undefined;
}

/**
 * Queue every stored event that matches the filter (and the subscription) for delivery again, in log order,
 * as new outbox rows tagged with the replay id. Returns how many were queued.
 */
export async function replayEvents(
  executor: Executor,
  filter: ReplayFilter,
): Promise<{ replayId: string; events: number }> {
  const replayId = filter.replayId ?? uuidv7();
  const rows = await query<{ n: number }>(
    executor,
    sql`with queued as (
      insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type, ordering_key, max_attempts, replay_id,
        next_attempt_at, handler)
      select e.tenant_id, s.id, e.id, e.ts, e.event_type,
        case when s.ordered then coalesce(e.message_id::text, e.contact_id) end, s.max_attempts, ${replayId},
        ${dueFor("s")}, ${handlerOf("s")}
      from subscriptions s join events e on e.tenant_id = s.tenant_id
      where s.id = ${filter.subscriptionId} and s.tenant_id = ${filter.tenantId}
        and herald_event_type_matches(s.event_types, e.event_type)
        ${filter.start ? sql`and e.ts >= ${filter.start.toISOString()}::timestamptz` : sql``}
        ${filter.end ? sql`and e.ts < ${filter.end.toISOString()}::timestamptz` : sql``}
        ${filter.eventTypes?.length ? sql`and herald_event_type_matches(${`{${filter.eventTypes.map((t) => JSON.stringify(t)).join(",")}}`}::text[], e.event_type)` : sql``}
        ${filter.correlationId ? sql`and e.correlation_id = ${filter.correlationId}` : sql``}
      order by e.transaction_id, e.position
      returning 1
    ) select count(*)::int as n from queued`,
  );
  const events = Number(rows[0]?.n ?? 0);
  if (events > 0) await notifyQueue(executor, outboxQueue);
  return { replayId, events };
}
