import { sql } from "drizzle-orm";
import { dueFor, handlerOf, outboxChannel } from "../queue/outbox.js";

/**
 * The log append, as CTEs over a CTE named `fresh` that holds the new events (the `events` columns below,
 * plus `ord` for their order): `inserted` stores them, `queued` adds one outbox row per matching
 * subscription, `woke` sends one NOTIFY when anything was queued for the claims (a statement must read
 * `woke`, or it does not run). Written once for every writer: `writeEvents`, and the ingest store, which
 * appends its `message.*` events straight from the rows it stored.
 *
 * `local`: the rows of this process's handlers (placeholders `localWorker`, `localHandlers`, a text[]
 * literal, `localNow`, the dispatcher's clock, and `localLeaseMs`) are queued already claimed by its
 * dispatcher, for the writer to hand over once the statement has committed (see queue/handOver.ts); not those
 * of ordered or paused subscriptions, which the claim's own rules govern. `queued` then returns what the
 * hand-over needs.
 *
 * The outbox's row rules (`dueFor`, `handlerOf`, its channel) come from queue/, not from the bus: the bus
 * depends on the log, never the reverse.
 */
const append = (local: boolean) => {
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
  return sql`inserted as (
      insert into events (id, tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        event_key, correlation_id, causation_id, schema_version, sequence_number, ts)
      select id, tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        event_key, correlation_id, causation_id, schema_version, sequence_number, ts
      from fresh order by ord
      returning id, tenant_id, event_type, ts, contact_id, message_id, created_at, position, transaction_id
    ), queued as (
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

export const appendFresh = append(false);
export const appendFreshLocal = append(true);
