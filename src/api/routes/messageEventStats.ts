import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { providerEventsPerHour } from "../../ingest/providerCounts.js";
import { timeRange } from "../ranges.js";
import { DateOrTime } from "../schemas.js";

/**
 * `GET /api/v1/message-events/stats?start=&end=`: the provider events the tenant's webhooks received, counted
 * by provider and hour of receipt (UTC), for the console's "webhook events per provider" (`events/stats`
 * cannot group by provider: the log's `message.*` events carry it in their payload only).
 */
const StatsQuery = Type.Object(
  { start: Type.Optional(DateOrTime), end: Type.Optional(DateOrTime) },
  { additionalProperties: false },
);

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
