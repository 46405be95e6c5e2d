import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/client.js";
import { isoTextSql } from "../db/timestamps.js";

/** How many provider events a tenant's webhooks brought in one UTC hour, from one provider. */
export interface ProviderHour {
  provider: string;
  /** The hour's start, RFC 3339 UTC (as `events/stats` names its hours). */
  hour: string;
  count: number;
}

/**
 * The provider events a tenant's webhooks received, by provider and UTC hour of receipt, over [from, to),
 * ordered by hour then provider: the events each accepted delivery held (`event_count`; repeats included, as
 * the provider sent them). One row per request is read, not one per event, through each of the tenant's
 * sources' `(source_id, received_at)` index: a busy week of SendGrid is a few thousand rows.
 */
export async function providerEventsPerHour(
  executor: Executor,
  tenantId: string,
  range: { from: Date | undefined; to: Date | undefined },
): Promise<ProviderHour[]> {
  const rows = await query<{ provider: string; hour: string; count: string | number }>(
    executor,
    sql`select d.provider,
        ${isoTextSql(sql`date_trunc('hour', d.received_at, 'UTC')`)} as hour,
        sum(d.event_count) as count
      from webhook_sources s join webhook_deliveries d on d.source_id = s.id
      where s.tenant_id = ${tenantId} and d.rejected_reason is null and d.event_count > 0
        ${range.from ? sql`and d.received_at >= ${range.from.toISOString()}::timestamptz` : sql``}
        ${range.to ? sql`and d.received_at < ${range.to.toISOString()}::timestamptz` : sql``}
      group by 1, 2 order by 2, 1`,
  );
  return rows.map((r) => ({ provider: r.provider, hour: r.hour, count: Number(r.count) }));
}
