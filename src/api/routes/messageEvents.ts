import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { jsonWithRaw } from "../../domain/rawJson.js";
import { notFound } from "../../errors.js";
import { eventsOfMessage, listMessageEvents } from "../../messages/events.js";
import { getMessage } from "../../messages/outbound.js";
import { ListQuery, pageOf } from "../paging.js";
import { timeRange } from "../ranges.js";
import { DateTime, IdParams, Text, Uuid } from "../schemas.js";

/**
 * What providers reported about outbound messages: of one message, or of the tenant's, filtered. Each event's
 * `payload` is the provider's event byte for byte where its bytes were kept (`jsonWithRaw`).
 */
export function messageEventRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/messages/:id/events",
    { schema: { tags: ["messages"], params: IdParams } },
    async (request, reply) => {
      const { id } = request.params;
      reply.type("application/json; charset=utf-8").serializer(jsonWithRaw);
      return request.inTenant(async (tx) => {
        if (!(await getMessage(tx, request.tenantId, id))) throw notFound("Message");
        return { events: await eventsOfMessage(tx, request.tenantId, id) };
      });
    },
  );

  app.get(
    "/api/v1/message-events",
    {
      schema: {
        tags: ["messages"],
        querystring: Type.Object(
          {
            ...ListQuery,
            type: Type.Optional(Text(50)),
            message_id: Type.Optional(Uuid),
            since: Type.Optional(DateTime),
            until: Type.Optional(DateTime),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const q = request.query;
      const { from: since, to: until } = timeRange(q.since, q.until, {
        in: "querystring",
        from: "since",
        to: "until",
        inclusive: true,
      });
      const { limit, cursor } = pageOf(q);
      const page = await request.inTenant((tx) =>
        listMessageEvents(
          tx,
          request.tenantId,
          { type: q.type, messageId: q.message_id, since, until },
          limit,
          cursor,
        ),
      );
      reply.type("application/json; charset=utf-8").serializer(jsonWithRaw);
      return { events: page.items, next_cursor: page.nextCursor };
    },
  );
}
