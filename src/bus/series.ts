import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { latencyPercentiles } from "./latencyBuckets.js";

export const seriesBuckets = ["minute", "hour", "day"] as const;
export type SeriesBucket = (typeof seriesBuckets)[number];

/** One bucket of time of a tenant's deliveries. */
export interface BusSeriesPoint {
  /** The bucket's start (UTC). */
  at: string;
  delivered: number;
  /** Delivered on a later attempt than the first. */
  retried: number;
  /** Rows that used up their attempts in the bucket (dead letters). */
  failed: number;
  /** From the bucket's latency histogram: within one histogram bucket (≤ ~26 %) of the exact figure. */
  latency_ms: { p50: number | null; p95: number | null; p99: number | null; max: number | null };
}

export interface SeriesOptions {
  /** How far back (seconds). @defaultValue 3600 */
  windowSeconds?: number;
  /** @defaultValue `minute` */
  bucket?: SeriesBucket;
  subscriptionId?: string | undefined;
}

const json = <T>(v: unknown) => (typeof v === "string" ? JSON.parse(v) : v) as T;
const iso = (v: unknown) => new Date(Number(v)).toISOString();

/**
 * The tenant's deliveries (or one subscription's) over the window, bucket by bucket, oldest first, from the
 * delivery rollups (minutes overlapping the window count whole) and the outbox's dead rows: the figures of
 * `bus/stats` as a time series, for charts. Buckets with nothing delivered or failed are left out.
 */
export async function busSeries(
  executor: Executor,
  tenantId: string,
  options: SeriesOptions = {},
): Promise<BusSeriesPoint[]> {
  const windowSeconds = options.windowSeconds ?? 3600;
  const bucket = options.bucket ?? "minute";
  const bySubscription = options.subscriptionId
    ? sql`and subscription_id = ${options.subscriptionId}`
    : sql``;
  const rows = await query<Record<string, unknown>>(
    executor,
    sql`with w as (
      select date_trunc(${bucket}, minute, 'UTC') as at, delivered, retried, latency_ms_max, latency_buckets
      from delivery_rollups
      where tenant_id = ${tenantId} ${bySubscription}
        and minute > now() - ${windowSeconds} * interval '1 second' - interval '1 minute'
    ), counts as (
      select w.at, u.i, sum(u.n) as n from w, unnest(w.latency_buckets) with ordinality u(n, i) group by w.at, u.i
    ), delivered as (
      select at, sum(delivered) as delivered, sum(retried) as retried, max(latency_ms_max) as max_ms,
        (select json_agg(c.n order by c.i) from counts c where c.at = w.at) as buckets
      from w group by at
    ), dead as (
      select date_trunc(${bucket}, updated_at, 'UTC') as at, count(*) as failed from outbox
      where tenant_id = ${tenantId} ${bySubscription} and status = 'dead'
        and updated_at > now() - ${windowSeconds} * interval '1 second'
      group by 1
    )
    select extract(epoch from coalesce(d.at, x.at)) * 1000 as at_ms, coalesce(d.delivered, 0) as delivered,
      coalesce(d.retried, 0) as retried, coalesce(x.failed, 0) as failed, d.max_ms, d.buckets
    from delivered d full join dead x on x.at = d.at
    order by 1`,
  );
  return rows.map((r) => {
    const maxMs = r.max_ms === null || r.max_ms === undefined ? null : Number(r.max_ms);
    const buckets = (json<unknown[] | null>(r.buckets) ?? []).map(Number);
    return {
      at: iso(r.at_ms),
      delivered: Number(r.delivered),
      retried: Number(r.retried),
      failed: Number(r.failed),
      latency_ms: { ...latencyPercentiles(buckets, maxMs), max: maxMs },
    };
  });
}
