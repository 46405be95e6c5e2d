import { sql } from "drizzle-orm";
import { dueFor, handlerOf, outboxQueue } from "../bus/outboxQueue.js";

/**
 * The log append, as CTEs over a CTE named `fresh` that holds the new events (the `events` columns below,
 * plus `ord` for their order): `inserted` stores them, `queued` adds one outbox row per matching
 * subscription, `woke` sends one NOTIFY when anything was queued (a statement must read `woke`, or it does
 * not run). Written once for every writer: `writeEvents`, and the ingest store, which appends its
 * `message.*` events straight from the rows it stored.
 */
export const appendFresh = sql`inserted as (
      insert into events (id, tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        event_key, correlation_id, causation_id, schema_version, sequence_number, ts)
      select id, tenant_id, event_type, source, contact_id, session_id, message_id, payload, metadata,
        event_key, correlation_id, causation_id, schema_version, sequence_number, ts
      from fresh order by ord
      returning id, tenant_id, event_type, ts, contact_id, message_id, created_at, position, transaction_id
    ), queued as (
      insert into outbox (tenant_id, subscription_id, event_id, event_ts, event_type, ordering_key, max_attempts,
        next_attempt_at, handler)
      select e.tenant_id, s.id, e.id, e.ts, e.event_type,
        case when s.ordered then coalesce(e.message_id::text, e.contact_id) end, s.max_attempts, ${dueFor("s")},
        ${handlerOf("s")}
      from inserted e join subscriptions s on s.tenant_id = e.tenant_id
      where herald_event_type_matches(s.event_types, e.event_type)
      order by e.position
      returning id
    ), woke as (
      select pg_notify(${outboxQueue.channel}, '') from (select 1 from queued limit 1) q
    )`;
