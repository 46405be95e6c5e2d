import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";

export interface BusStats {
  outbox: { pending: number; processing: number; completed: number; failed: number };
  dead_letters: number;
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
  /** A delivery slower than this (event created → delivered) is a slow event. @defaultValue 1000 */
  slowThresholdMs?: number;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/**
 * Delivery health of one tenant's bus. Latency is event created → delivered; rates are over the deliveries
 * that finished in the window (a "failed" outbox row is one that became a dead letter).
 */
export async function busStats(
  executor: Executor,
  tenantId: string,
  options: StatsOptions = {},
): Promise<BusStats> {
  const windowSeconds = options.windowSeconds ?? 3600;
  const slowMs = options.slowThresholdMs ?? 1000;
  const [row] = await query<Record<string, unknown>>(
    executor,
    sql`with recent as (
      select o.status, o.attempts, o.event_type,
        extract(epoch from (o.delivered_at - e.created_at)) * 1000 as latency_ms
      from outbox o left join events e on e.id = o.event_id and e.ts = o.event_ts
      where o.tenant_id = ${tenantId} and o.status in ('completed', 'dead')
        and o.updated_at > now() - ${windowSeconds} * interval '1 second'
    )
    select
      (select count(*) from outbox where tenant_id = ${tenantId} and status = 'pending') as pending,
      (select count(*) from outbox where tenant_id = ${tenantId} and status = 'processing') as processing,
      (select count(*) from outbox where tenant_id = ${tenantId} and status = 'completed') as completed,
      (select count(*) from outbox where tenant_id = ${tenantId} and status = 'dead') as failed,
      (select count(*) from dead_letters where tenant_id = ${tenantId} and retried_at is null) as dead_letters,
      (select percentile_cont(0.5) within group (order by latency_ms) from recent where status = 'completed') as p50,
      (select percentile_cont(0.95) within group (order by latency_ms) from recent where status = 'completed') as p95,
      (select percentile_cont(0.99) within group (order by latency_ms) from recent where status = 'completed') as p99,
      (select max(latency_ms) from recent where status = 'completed') as max,
      (select count(*) from recent where status = 'completed') as delivered,
      (select count(*) from recent where status = 'dead') as dead,
      (select count(*) from recent where attempts > 1) as retried,
      (select count(*) from recent) as finished,
      (select count(*) from recent where status = 'completed' and latency_ms > ${slowMs}) as slow,
      (select coalesce(json_object_agg(event_type, json_build_object('delivered', delivered, 'failed', failed, 'p95_ms', p95)), '{}')
        from (select event_type, count(*) filter (where status = 'completed') as delivered,
          count(*) filter (where status = 'dead') as failed,
          percentile_cont(0.95) within group (order by latency_ms) filter (where status = 'completed') as p95
          from recent group by event_type) t) as by_type`,
  );
  const r = row!;
  const finished = Number(r.finished);
  const rate = (n: unknown) => (finished === 0 ? null : Number(n) / finished);
  const byType = (typeof r.by_type === "string" ? JSON.parse(r.by_type) : r.by_type) as BusStats["by_type"];
  return {
    outbox: {
      pending: Number(r.pending),
      processing: Number(r.processing),
      completed: Number(r.completed),
      failed: Number(r.failed),
    },
    dead_letters: Number(r.dead_letters),
    latency_ms: { p50: num(r.p50), p95: num(r.p95), p99: num(r.p99), max: num(r.max) },
    throughput_per_s: Number(r.delivered) / windowSeconds,
    success_rate: rate(r.delivered),
    retry_rate: rate(r.retried),
    failure_rate: rate(r.dead),
    slow_events: Number(r.slow),
    window_seconds: windowSeconds,
    slow_threshold_ms: slowMs,
    by_type: Object.fromEntries(
      Object.entries(byType).map(([k, v]) => [
        k,
        { delivered: Number(v.delivered), failed: Number(v.failed), p95_ms: num(v.p95_ms) },
      ]),
    ),
  };
}
