import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { getDeadLetter, listDeadLetters, retryDeadLetters } from "../../bus/deadLetters.js";
import { notFound } from "../../errors.js";
import { ListQuery, pageOf } from "../paging.js";
import { IdParams, Nullable, problemResponses, Uuid } from "../schemas.js";

const DeadLetterView = Type.Object({
  id: Type.String(),
  subscription_id: Type.String(),
  event_id: Type.String(),
  event_type: Type.String(),
  attempts: Type.Integer(),
  last_error: Nullable(Type.String()),
  failed_at: Type.String(),
});

const Retried = Type.Object({ retried: Type.Integer() });

/** Deliveries of the bus that used up their attempts: listed, and retried one by one or by filter. */
export function deadLetterRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/dead-letters",
    {
      schema: {
        tags: ["bus"],
        querystring: Type.Object(
          {
            ...ListQuery,
            subscription_id: Type.Optional(Uuid),
            event_type: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            dead_letters: Type.Array(DeadLetterView),
            next_cursor: Nullable(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { limit, cursor } = pageOf(q);
      const page = await request.inTenant((tx) =>
        listDeadLetters(
          tx,
          request.tenantId,
          { subscriptionId: q.subscription_id, eventType: q.event_type },
          limit,
          cursor,
        ),
      );
      return { dead_letters: page.items, next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/dead-letters/:id",
    {
      schema: {
        tags: ["bus"],
        params: IdParams,
        response: {
          200: Type.Composite([
            DeadLetterView,
            Type.Object({
              retried_at: Nullable(Type.String()),
              attempt_errors: Type.Array(
                Type.Object({ attempt: Type.Integer(), error: Type.String(), at: Type.String() }),
              ),
            }),
          ]),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const found = await request.inTenant((tx) => getDeadLetter(tx, request.tenantId, request.params.id));
      if (!found) throw notFound("Dead letter");
      return found;
    },
  );

  app.post(
    "/api/v1/dead-letters/:id/retry",
    {
      schema: {
        tags: ["bus"],
        params: IdParams,
        response: { 202: Retried, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const retried = await request.inTenant((tx) => retryDeadLetters(tx, request.tenantId, { id }));
      if (retried === 0) throw notFound("Dead letter");
      return reply.status(202).send({ retried });
    },
  );

  app.post(
    "/api/v1/dead-letters/retry",
    {
      schema: {
        tags: ["bus"],
        body: Type.Object(
          {
            subscription_id: Type.Optional(Uuid),
            event_type: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 202: Retried, ...problemResponses },
      },
    },
    async (request, reply) => {
      // A body-less request has `{}` here (app.ts fills it in before validation).
      const { subscription_id, event_type } = request.body;
      const retried = await request.inTenant((tx) =>
        retryDeadLetters(tx, request.tenantId, { subscriptionId: subscription_id, eventType: event_type }),
      );
      return reply.status(202).send({ retried });
    },
  );
}
