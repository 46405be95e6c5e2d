import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { replayEvents } from "../../bus/replay.js";
import { getSubscription } from "../../bus/subscriptions.js";
import { notFound } from "../../errors.js";
import { timeRange } from "../ranges.js";
import { DateOrTime, EventTypePattern, problemResponses, Uuid } from "../schemas.js";

/** Replays: the log's events of a range sent again to one subscription. */
export function replayRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    "/api/v1/replays",
    {
      schema: {
        tags: ["bus"],
        body: Type.Object(
          {
            subscription_id: Uuid,
            start: Type.Optional(DateOrTime),
            end: Type.Optional(DateOrTime),
            event_types: Type.Optional(Type.Array(EventTypePattern, { minItems: 1, maxItems: 100 })),
            correlation_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: {
          202: Type.Object({ replay_id: Type.String(), events: Type.Integer() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const { from: start, to: end } = timeRange(body.start, body.end, {
        in: "body",
        from: "start",
        to: "end",
      });
      const result = await request.inTenant(async (tx) => {
        if (!(await getSubscription(tx, request.tenantId, body.subscription_id)))
          throw notFound("Subscription");
        return replayEvents(tx, {
          tenantId: request.tenantId,
          subscriptionId: body.subscription_id,
          start,
          end,
          eventTypes: body.event_types,
          correlationId: body.correlation_id,
        });
      });
      return reply.status(202).send({ replay_id: result.replayId, events: result.events });
    },
  );
}
