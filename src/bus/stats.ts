import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { isoTextSql } from "../db/timestamps.js";
import { addBuckets, countAtLeast, latencyBucketCount, latencyPercentiles } from "./latencyBuckets.js";

export interface BusStats {
  outbox: { pending: number; processing: number; completed: number; failed: number };
  dead_letters: number;
  /** How long the oldest delivery that is due has waited (ms, from its event's write): null when none is. */
  lag_ms: number | null;
  latency_ms: { p50: number | null; p95: number | null; p99: number | null; max: number | null };
  throughput_per_s: number;
  success_rate: number | null;
  retry_rate: number | null;
  failure_rate: number | null;
  slow_events: number;
  window_seconds: number;
  slow_threshold_ms: number;
  by_type: Record<string, { delivered: number; failed: number; p95_ms: number | null }>;
}

export interface StatsOptions {
  /** Deliveries finished in this many seconds before now count toward rates and latency. @defaultValue 3600 */
  windowSeconds?: number;
  /** A delivery slower than this (event stored → delivered) is a slow event. @defaultValue 1000 */
  slowThresholdMs?: number;
  /** Only this subscription's deliveries. @defaultValue all of the tenant's */
  subscriptionId?: string | undefined;
}

/** How one subscription is doing (`GET /api/v1/subscriptions/{id}`'s `health`). */
export interface SubscriptionHealth {
  window_seconds: number;
  /** Deliveries in the window. */
  delivered: number;
  /** Deliveries that became dead letters in the window. */
  failed: number;
  success_rate: number | null;
  latency_ms: { p50: number | null; p95: number | null };
  /** The latest delivery ever (not only in the window). */
  last_delivered_at: string | null;
  /** The newest error of a failed attempt still on record (a row awaiting its retry, or a dead letter). */
  last_error: { message: string; at: string } | null;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const json = <T>(v: unknown) => (typeof v === "string" ? JSON.parse(v) : v) as T;

/**
 * The window's deliveries as the rollups count them, one row per event type: the minutes that overlap the
 * window (a minute's deliveries count whole, so the window is rounded out to the minute), with their latency
 * histograms summed (`buckets`, a JSON array of the 72 counts).
 */
const deliveredIn = (tenantId: string, windowSeconds: number, subscriptionId: string | undefined) =>
  sql`with w as (
      select event_type, delivered, retried, latency_ms_max, latency_buckets from delivery_rollups
      where tenant_id = ${tenantId} ${subscriptionId ? sql`and subscription_id = ${subscriptionId}` : sql``}
        and minute > now() - ${windowSeconds} * interval '1 second' - interval '1 minute'
    ), counts as (
      select w.event_type, u.i, sum(u.n) as n from w, unnest(w.latency_buckets) with ordinality u(n, i)
      group by w.event_type, u.i
    )
    select w.event_type, sum(w.delivered) as delivered, sum(w.retried) as retried, max(w.latency_ms_max) as max_ms,
      (select json_agg(c.n order by c.i) from counts c where c.event_type = w.event_type) as buckets
    from w group by w.event_type`;

interface Delivered {
  delivered: number;
  retried: number;
  maxMs: number | null;
  buckets: number[];
}

const deliveredOf = (row: Record<string, unknown>): Delivered & { eventType: string } => ({
  eventType: row.event_type as string,
  delivered: Number(row.delivered),
  retried: Number(row.retried),
  maxMs: num(row.max_ms),
  buckets: (json<unknown[] | null>(row.buckets) ?? []).map(Number),
});

/** The event types' figures together. */
function total(types: Delivered[]): Delivered {
  let buckets = new Array<number>(latencyBucketCount).fill(0);
  let maxMs: number | null = null;
  for (const t of types) {
    buckets = addBuckets(buckets, t.buckets);
    if (t.maxMs !== null) maxMs = Math.max(maxMs ?? 0, t.maxMs);
  }
  return {
    delivered: types.reduce((n, t) => n + t.delivered, 0),
    retried: types.reduce((n, t) => n + t.retried, 0),
    maxMs,
    buckets,
  };
}

/**
 * Delivery health of one tenant's bus (or of one of its subscriptions). Delivered outbox rows are counted
 * into `delivery_rollups` and deleted as they complete, so deliveries, retries and latency come from the
 * rollups of the minutes overlapping the window, failures from the outbox's dead rows that died in it, and
 * the in-flight counts from the outbox. Latency is event stored → delivered (the outbox row is written with
 * its event), its percentiles read from the rollups' histogram: within one bucket, ≤ ~26 % (see
 * `latencyBuckets.ts`); `max` is exact. `slow_events` counts the deliveries in buckets starting at the
 * threshold or later (those in the bucket holding it are not counted). Rates are over the deliveries that
 * finished in the window, delivered or dead.
 */
export async function busStats(
  executor: Executor,
  tenantId: string,
  options: StatsOptions = {},
): Promise<BusStats> {
  const windowSeconds = options.windowSeconds ?? 3600;
  const slowMs = options.slowThresholdMs ?? 1000;
  const bySubscription = options.subscriptionId
    ? sql`and subscription_id = ${options.subscriptionId}`
    : sql``;
  const [row] = await query<Record<string, unknown>>(
    executor,
    sql`with delivered as (${deliveredIn(tenantId, windowSeconds, options.subscriptionId)}),
    dead as (
      select event_type, count(*) as failed, count(*) filter (where attempts > 1) as retried from outbox
      where tenant_id = ${tenantId} ${bySubscription} and status = 'dead'
        and updated_at > now() - ${windowSeconds} * interval '1 second'
      group by event_type
    )
    select
      (select count(*) from outbox where tenant_id = ${tenantId} ${bySubscription} and status = 'pending') as pending,
      (select count(*) from outbox where tenant_id = ${tenantId} ${bySubscription} and status = 'processing') as processing,
      (select coalesce(sum(delivered), 0) from delivery_rollups where tenant_id = ${tenantId} ${bySubscription}) as completed,
      (select count(*) from outbox where tenant_id = ${tenantId} ${bySubscription} and status = 'dead') as failed,
      (select count(*) from dead_letters where tenant_id = ${tenantId} ${bySubscription} and retried_at is null) as dead_letters,
      (select extract(epoch from (now() - min(created_at))) * 1000 from outbox
        where tenant_id = ${tenantId} ${bySubscription} and status = 'pending' and next_attempt_at <= now()) as lag_ms,
      (select coalesce(json_agg(d), '[]') from delivered d) as delivered,
      (select coalesce(json_agg(d), '[]') from dead d) as dead`,
  );
  const r = row!;
  const types = json<Record<string, unknown>[]>(r.delivered).map(deliveredOf);
  const dead = json<{ event_type: string; failed: unknown; retried: unknown }[]>(r.dead);
  const all = total(types);
  const failed = dead.reduce((n, d) => n + Number(d.failed), 0);
  const retried = all.retried + dead.reduce((n, d) => n + Number(d.retried), 0);
  const finished = all.delivered + failed;
  const rate = (n: number) => (finished === 0 ? null : n / finished);
  const byType: BusStats["by_type"] = {};
  for (const t of types) {
    byType[t.eventType] = {
      delivered: t.delivered,
      failed: 0,
      p95_ms: latencyPercentiles(t.buckets, t.maxMs).p95,
    };
  }
  for (const d of dead) {
    byType[d.event_type] ??= { delivered: 0, failed: 0, p95_ms: null };
    byType[d.event_type]!.failed = Number(d.failed);
  }
  return {
    outbox: {
      pending: Number(r.pending),
      processing: Number(r.processing),
      completed: Number(r.completed),
      failed: Number(r.failed),
    },
    dead_letters: Number(r.dead_letters),
    lag_ms: r.lag_ms === null || r.lag_ms === undefined ? null : Math.max(0, Math.round(Number(r.lag_ms))),
    latency_ms: { ...latencyPercentiles(all.buckets, all.maxMs), max: all.maxMs },
    throughput_per_s: all.delivered / windowSeconds,
    success_rate: rate(all.delivered),
    retry_rate: rate(retried),
    failure_rate: rate(failed),
    slow_events: countAtLeast(all.buckets, slowMs),
    window_seconds: windowSeconds,
    slow_threshold_ms: slowMs,
    by_type: byType,
  };
}

/**
 * How subscription `subscriptionId` of `tenantId` is doing: its deliveries, failures and latency over the
 * window (as `busStats` reckons them), its latest delivery and the newest error on record — of a row
 * awaiting its retry, or of a dead letter. One statement; each part reads an index or the outbox (which holds
 * only undelivered rows).
 */
export async function subscriptionHealth(
  executor: Executor,
  tenantId: string,
  subscriptionId: string,
  options: Pick<StatsOptions, "windowSeconds"> = {},
): Promise<SubscriptionHealth> {
  const windowSeconds = options.windowSeconds ?? 3600;
  const [row] = await query<Record<string, unknown>>(
    executor,
    sql`with delivered as (${deliveredIn(tenantId, windowSeconds, subscriptionId)})
    select (select coalesce(json_agg(d), '[]') from delivered d) as delivered,
      (select count(*) from outbox where tenant_id = ${tenantId} and subscription_id = ${subscriptionId}
        and status = 'dead' and updated_at > now() - ${windowSeconds} * interval '1 second') as failed,
      (select ${isoTextSql(sql`max(r.last_delivered_at)`)} from delivery_rollups r
        where r.tenant_id = ${tenantId} and r.subscription_id = ${subscriptionId}
          and r.minute = (select max(minute) from delivery_rollups
            where tenant_id = ${tenantId} and subscription_id = ${subscriptionId})) as last_delivered_at,
      (select json_build_object('message', e.message, 'at', ${isoTextSql(sql`e.at`)}) from (
        (select last_error as message, updated_at as at from outbox
          where tenant_id = ${tenantId} and subscription_id = ${subscriptionId} and last_error is not null
          order by updated_at desc limit 1)
        union all
        (select last_error, failed_at from dead_letters
          where tenant_id = ${tenantId} and subscription_id = ${subscriptionId} and last_error is not null
          order by failed_at desc limit 1)
        order by at desc limit 1) e) as last_error`,
  );
  const r = row!;
  const all = total(json<Record<string, unknown>[]>(r.delivered).map(deliveredOf));
  const failed = Number(r.failed);
  const { p50, p95 } = latencyPercentiles(all.buckets, all.maxMs);
  return {
    window_seconds: windowSeconds,
    delivered: all.delivered,
    failed,
    success_rate: all.delivered + failed === 0 ? null : all.delivered / (all.delivered + failed),
    latency_ms: { p50, p95 },
    last_delivered_at: (r.last_delivered_at as string | null) ?? null,
    last_error: json<{ message: string; at: string } | null>(r.last_error) ?? null,
  };
}
