import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { checkIntegrity } from "../../bus/integrity.js";
import { busSeries, seriesBuckets } from "../../bus/series.js";
import { busStats } from "../../bus/stats.js";
import { Uuid } from "../schemas.js";

/** How the tenant's bus is doing: delivery figures over a window, and the log/outbox integrity check. */
export function busStatsRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/bus/stats",
    {
      schema: {
        tags: ["bus"],
        querystring: Type.Object(
          {
            window_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86400 })),
            slow_ms: Type.Optional(Type.Integer({ minimum: 1 })),
            subscription_id: Type.Optional(Uuid),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { window_seconds, slow_ms, subscription_id } = request.query;
      return request.inTenant((tx) =>
        busStats(tx, request.tenantId, {
          windowSeconds: window_seconds,
          slowThresholdMs: slow_ms,
          subscriptionId: subscription_id,
        }),
      );
    },
  );

  app.get(
    "/api/v1/bus/series",
    {
      schema: {
        tags: ["bus"],
        querystring: Type.Object(
          {
            window_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86400 })),
            bucket: Type.Optional(Type.Union(seriesBuckets.map((b) => Type.Literal(b)))),
            subscription_id: Type.Optional(Uuid),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { window_seconds, bucket, subscription_id } = request.query;
      const points = await request.inTenant((tx) =>
        busSeries(tx, request.tenantId, {
          windowSeconds: window_seconds,
          bucket,
          subscriptionId: subscription_id,
        }),
      );
      return { window_seconds: window_seconds ?? 3600, bucket: bucket ?? "minute", points };
    },
  );

  app.get("/api/v1/bus/integrity", { schema: { tags: ["bus"] } }, async (request) =>
    request.inTenant((tx) => checkIntegrity(tx, request.tenantId)),
  );
}
