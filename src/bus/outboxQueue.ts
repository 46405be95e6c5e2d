import { type SQL, sql } from "drizzle-orm";
import { outbox } from "../db/schema/index.js";
import { storedEventColumns } from "../events/columns.js";
import { channelOf, type QueueDefinition } from "../queue/definitions.js";

/**
 * When a new outbox row of subscription `s` (an alias in scope) is due: now, or never while the subscription
 * is paused ('infinity' keeps the row out of the way of claims; resuming makes it due).
 */
export const dueFor = (s: string) =>
  sql`case when ${sql.identifier(s)}.paused_at is null then now() else 'infinity'::timestamptz end`;

/** The handler name a new outbox row of subscription `s` (an alias in scope) carries: null for other sinks. */
export const handlerOf = (s: string) =>
  sql`case when ${sql.identifier(s)}.sink->>'type' = 'handler' then ${sql.identifier(s)}.sink->>'name' end`;

/** The `handlers` claim value of a process that runs no in-process handlers: it takes the narrow claim. */
export const noHandlers = "{}";

/** Make the held rows (due at 'infinity') of the subscriptions in `ids` (a uuid[] expression) due now. */
export const releaseHeld = (ids: SQL) => sql`update outbox o set next_attempt_at = now(), updated_at = now()
  where o.subscription_id = any (${ids}) and o.status = 'pending' and o.next_attempt_at = 'infinity'
  returning 1`;

/**
 * The outbox: rows of paused subscriptions wait; on ordered subscriptions only the oldest pending row of a
 * key may be claimed, and none while another row of that key is in flight. Dead rows become
 * `dead_letters` rows in the same statement. A claim given `handlers` (the in-process handler names of the
 * claiming process, a text[] literal) leaves the rows of handler subscriptions it cannot run to a process
 * that can; without it (NULL) every row is claimable. Each row carries its handler's name (`handlerOf`).
 */
export const outboxQueue: QueueDefinition = {
  name: "outbox",
  table: outbox,
  channel: channelOf("outbox"),
  completeSet: (now) => sql`, delivered_at = ${now}`,
  // The claim hands back each row's event too: a delivery needs no further query (its subscription comes
  // from the dispatcher's cache).
  claimReturning: sql`, (select row_to_json(x) from (select ${storedEventColumns("e")} from events e
      where e.id = t.event_id and e.ts = t.event_ts) x) as event`,
  // Paused subscriptions as an init-plan array (computed once per claim), not a join: the claim then stays
  // an ordered scan of the pending-rows index.
  claimFilter: sql`q.subscription_id <> all (array(select s.id from subscriptions s where s.paused_at is not null
      or (s.sink->>'type' = 'handler' and s.sink->>'name' <> all (${sql.placeholder("handlers")}::text[]))))
    and (q.ordering_key is null or (
      not exists (select 1 from outbox b where b.subscription_id = q.subscription_id
        and b.ordering_key = q.ordering_key and b.status = 'processing')
      and not exists (select 1 from outbox b where b.subscription_id = q.subscription_id
        and b.ordering_key = q.ordering_key and b.status = 'pending' and b.id < q.id)))`,
  claimDefaults: { handlers: null },
  // A process with no handlers claims through the index of webhook and NATS rows: handler rows waiting for an
  // application that is down would otherwise be read past by every claim.
  narrowClaim: { when: (values) => values.handlers === noHandlers, filter: sql`q.handler is null` },
  // Held rows of subscriptions that are not paused: written by a transaction that still saw the subscription
  // paused and committed after it was resumed.
  onReap: releaseHeld(sql`array(select s.id from subscriptions s where s.paused_at is null)`),
  onDead: (
    dead,
  ) => sql`insert into dead_letters (tenant_id, subscription_id, outbox_id, event_id, event_type, attempts, last_error, failed_at)
    select d.tenant_id, d.subscription_id, d.id, d.event_id, d.event_type, d.attempts, d.last_error, d.updated_at from ${dead} d
    on conflict (outbox_id) do update set attempts = excluded.attempts, last_error = excluded.last_error,
      failed_at = excluded.failed_at, retried_at = null, updated_at = excluded.failed_at`,
};
