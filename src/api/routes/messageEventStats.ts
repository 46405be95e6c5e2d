import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { sql } from "drizzle-orm";
import type { FastifyInstance } from "fastify";
import { type Executor, query } from "../../db/client.js";
import { timeRange } from "../ranges.js";
import { DateOrTime } from "../schemas.js";

/**
 * `GET /api/v1/message-events/stats?start=&end=`: the provider events received, counted by provider and hour
 * (UTC), for the console's "webhook events per provider". The log's `message.*` events carry the provider in
 * their payload only, so `events/stats` cannot group by it; this counts `message_events` itself.
 */

const StatsQuery = Type.Object(
  { start: Type.Optional(DateOrTime), end: Type.Optional(DateOrTime) },
  { additionalProperties: false },
);

export interface ProviderHour {
  provider: string;
  /** The hour's start, RFC 3339 UTC (as `events/stats` names its hours). */
  hour: string;
  count: number;
}

/** One statement over [from, to) (the tenant's `event_at` index bounds it), ordered by hour then provider. */
export async function providerEventsPerHour(
  executor: Executor,
  tenantId: string,
  range: { from: Date | undefined; to: Date | undefined },
): Promise<ProviderHour[]> {
  const rows = await query<{ provider: string; hour: string; count: string | number }>(
    executor,
    sql`select provider,
        to_char(date_trunc('hour', event_at, 'UTC') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as hour,
        count(*) as count
      from message_events
      where tenant_id = ${tenantId}
        ${range.from ? sql`and event_at >= ${range.from.toISOString()}::timestamptz` : sql``}
        ${range.to ? sql`and event_at < ${range.to.toISOString()}::timestamptz` : sql``}
      group by 1, 2 order by 2, 1`,
  );
  return rows.map((r) => ({ provider: r.provider, hour: r.hour, count: Number(r.count) }));
}

export function messageEventStatsRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/message-events/stats",
    { schema: { tags: ["messages"], querystring: StatsQuery } },
    async (request) => {
      const range = timeRange(request.query.start, request.query.end, {
        in: "querystring",
        from: "start",
        to: "end",
      });
      const buckets = await request.inTenant((tx) => providerEventsPerHour(tx, request.tenantId, range));
      return { buckets, total: buckets.reduce((sum, b) => sum + b.count, 0) };
    },
  );
}
