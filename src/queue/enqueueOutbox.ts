import { sql } from "drizzle-orm";
import { dueFor, handlerOf, outboxChannel } from "./outbox.js";

/**
 * Enqueue the outbox rows of freshly written events: the CTEs `queued` (one outbox row per matching
 * subscription of each row of a CTE named `inserted`, the events just stored) and `woke` (one NOTIFY when
 * anything was queued for the claims; a statement must read `woke`, or it does not run). The log's append
 * (`events/append.ts`) puts them after its own `inserted`, so events and their deliveries commit together.
 *
 * `local`: the rows of this process's handlers (placeholders `localWorker`, `localHandlers`, a text[]
 * literal, `localNow`, the dispatcher's clock, and `localLeaseMs`) are queued already claimed by its
 * dispatcher, for the writer to hand over once the statement has committed (see `handOver.ts`); not those
 * of ordered or paused subscriptions, which the claim's own rules govern. `queued` then returns what the
 * hand-over needs.
 */
export const enqueueOutboxFor = (local: boolean) => {
  // The claim's columns, set when `l.mine` (the row goes to this process's dispatcher, computed once per row
  // below); other rows, and every row of the ordinary append, keep the columns' defaults (pending).
  const claimColumns = local ? sql`, status, locked_by, locked_until, attempts` : sql``;
  const claimValues = local
    ? sql`, case when l.mine then 'processing' else 'pending' end,
        case when l.mine then ${sql.placeholder("localWorker")}::text end,
        case when l.mine then ${sql.placeholder("localNow")}::timestamptz
          + ${sql.placeholder("localLeaseMs")}::int * interval '1 millisecond' end,
        case when l.mine then 1 else 0 end`
    : sql``;
  // What a dispatcher needs of a row handed over to it (the writer adds the event).
  const handedOver = sql`id, tenant_id, subscription_id, event_id, status, attempts, max_attempts, locked_until,
        created_at`;
  return sql`queued as (
      insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type, ordering_key, max_attempts,
        next_attempt_at, handler ${claimColumns})
      select e.tenant_id, s.id, e.id, e.ts, e.event_type,
        case when s.ordered then coalesce(e.message_id::text, e.contact_id) end, s.max_attempts, ${dueFor("s")},
        ${handlerOf("s")} ${claimValues}
      from inserted e join subscriptions s on s.tenant_id = e.tenant_id
      ${
        local
          ? sql`cross join lateral (select s.sink->>'type' = 'handler' and not s.ordered and s.paused_at is null
          and s.sink->>'name' = any (${sql.placeholder("localHandlers")}::text[]) as mine) l`
          : sql``
      }
      where herald_event_type_matches(s.event_types, e.event_type)
      order by e.position
      returning ${local ? handedOver : sql`id, status`}
    ), woke as (
      select pg_notify(${outboxChannel}, '') from (select 1 from queued where status = 'pending' limit 1) q
    )`;
};
