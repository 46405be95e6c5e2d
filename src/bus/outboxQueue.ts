import { type SQL, sql } from "drizzle-orm";
import { outbox } from "../db/schema/index.js";
import { isoTextSql } from "../db/timestamps.js";
import { storedEventColumns } from "../events/columns.js";
import type { QueueDefinition } from "../queue/definitions.js";
import { releaseHeld } from "../queue/hold.js";
import { outboxChannel } from "../queue/outbox.js";

/**
 * Count delivered outbox rows (`completed`, completed at `now`) into `delivery_rollups`: per tenant, UTC
 * minute of the completion, subscription and event type, with the latency from the row's creation (in the
 * transaction of its event, or of its replay) to its completion as a histogram (`herald_latency_bucket`,
 * see `latencyBuckets.ts`). The rows are grouped first (an upsert takes each key once) and upserted in key
 * order, so completions racing on the same keys wait on each other and never deadlock.
 */
function countDelivered(completed: SQL, now: SQL): SQL {
  return sql`insert into delivery_rollups as r (tenant_id, minute, subscription_id, event_type, delivered, retried,
      latency_ms_sum, latency_ms_max, latency_buckets, last_delivered_at)
    select g.tenant_id, g.minute, g.subscription_id, g.event_type, g.n, g.retried, g.ms_sum, g.ms_max,
      array(select count(b.k) from generate_series(0, 71) k left join unnest(g.buckets) b(k) on b.k = k.k
        group by k.k order by k.k),
      g.at
    from (
      select d.tenant_id, date_trunc('minute', ${now}, 'UTC') as minute, d.subscription_id, d.event_type,
        count(*) as n, count(*) filter (where d.attempts > 1) as retried, sum(d.ms) as ms_sum, max(d.ms) as ms_max,
        array_agg(herald_latency_bucket(d.ms)) as buckets, ${now} as at
      from (select c.tenant_id, c.subscription_id, c.event_type, c.attempts,
          greatest(0, extract(epoch from (${now} - c.created_at)) * 1000)::double precision as ms
        from ${completed} c) d
      group by d.tenant_id, d.subscription_id, d.event_type
    ) g
    order by g.tenant_id, g.minute, g.subscription_id, g.event_type
    on conflict (tenant_id, minute, subscription_id, event_type) do update set
      delivered = r.delivered + excluded.delivered, retried = r.retried + excluded.retried,
      latency_ms_sum = r.latency_ms_sum + excluded.latency_ms_sum,
      latency_ms_max = greatest(r.latency_ms_max, excluded.latency_ms_max),
      latency_buckets = array(select r.latency_buckets[i] + excluded.latency_buckets[i]
        from generate_subscripts(r.latency_buckets, 1) i order by i),
      last_delivered_at = greatest(r.last_delivered_at, excluded.last_delivered_at)`;
}

/** The `handlers` claim value of a process that runs no in-process handlers: it claims no handler lane. */
export const noHandlers = "{}";

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
  channel: outboxChannel,
  // A delivered row is deleted and counted into its minute's rollup in the same statement: the outbox holds
  // only work to do, in flight and dead, and delivery health reads the rollups (`bus/stats.ts`).
  completeDeletes: true,
  onComplete: countDelivered,
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
  // Lanes: webhook and NATS rows (the claim index), and each handler's rows that this process runs (all
  // handlers' without `handlers`). Nobody reads past rows it cannot take: a backlog waiting for an
  // application that is down, say, is not in front of `herald serve`'s claims, nor another application's.
  pendingLanes: [sql`handler is null`, sql`handler is not null`],
  claimLanes: {
    of: (values) => (typeof values.handlers === "string" ? values.handlers : "*"),
    candidates: (lanes, { due, limit }) => {
      const remote = sql`select r.id, r.next_attempt_at from (
        select q.id, q.next_attempt_at from outbox q where ${due} and q.handler is null
        order by q.next_attempt_at, q.id limit ${limit} for update of q skip locked) r`;
      if (lanes === noHandlers) return remote;
      // The handler names are part of the text (quoted as a literal), so the plan knows how many lanes.
      const names =
        lanes === "*"
          ? sql`array(select distinct s.sink->>'name' from subscriptions s where s.sink->>'type' = 'handler')`
          : sql.raw(`'${lanes.replaceAll("'", "''")}'::text[]`);
      return sql`${remote} union all select l.id, l.next_attempt_at from unnest(${names}) h(name),
        lateral (select q.id, q.next_attempt_at from outbox q where ${due} and q.handler = h.name
          order by q.next_attempt_at, q.id limit ${limit} for update of q skip locked) l`;
    },
  },
  // Held rows of subscriptions that are not paused: written by a transaction that still saw the subscription
  // paused and committed after it was resumed.
  onReap: releaseHeld(sql`array(select s.id from subscriptions s where s.paused_at is null)`),
  // Each failed attempt's error, kept on the row (its first 500 characters; a row that is delivered is
  // deleted with them) and copied to its dead letter: the console shows them all.
  failSet: (now) => sql`, attempt_errors = coalesce(t.attempt_errors, '[]'::jsonb)
    || jsonb_build_array(jsonb_build_object('attempt', t.attempts, 'error', left(f.error, 500),
      'at', ${isoTextSql(now)}))`,
  onDead: (
    dead,
  ) => sql`insert into dead_letters (tenant_id, subscription_id, outbox_id, event_id, event_type, attempts, last_error,
      attempt_errors, failed_at)
    select d.tenant_id, d.subscription_id, d.id, d.event_id, d.event_type, d.attempts, d.last_error,
      coalesce(d.attempt_errors, '[]'::jsonb), d.updated_at from ${dead} d
    on conflict (outbox_id) do update set attempts = excluded.attempts, last_error = excluded.last_error,
      attempt_errors = excluded.attempt_errors, failed_at = excluded.failed_at, retried_at = null,
      updated_at = excluded.failed_at`,
};
