import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { CommunicationSuppression } from "../../db/schema/index.js";
import { channels, suppressionReasons } from "../../domain/vocabularies.js";
import { notFound } from "../../errors.js";
import {
  addManualSuppression,
  checkSuppression,
  deleteSuppression,
  listSuppressions,
} from "../../messages/suppressions.js";
import { checkAddresses } from "../addresses.js";
import { ListQuery, pageOf } from "../paging.js";
import { IdParams, literals, Text } from "../schemas.js";

const view = (s: CommunicationSuppression) => ({
  id: s.id,
  channel: s.channel,
  address: s.address,
  reason: s.reason,
  group_id: s.groupId,
  source_event_id: s.sourceEventId,
  created_at: s.createdAt.toISOString(),
});

/** Addresses not to send to: found by provider events (bounces, complaints…) or added by hand. */
export function suppressionRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/suppressions",
    {
      schema: {
        tags: ["suppressions"],
        querystring: Type.Object(
          {
            ...ListQuery,
            channel: Type.Optional(literals(channels)),
            address: Type.Optional(Text(320)),
            reason: Type.Optional(literals(suppressionReasons)),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query;
      const { limit, cursor } = pageOf(q);
      const page = await request.inTenant((tx) =>
        listSuppressions(
          tx,
          request.tenantId,
          { channel: q.channel, address: q.address, reason: q.reason },
          limit,
          cursor,
        ),
      );
      return { suppressions: page.items.map(view), next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/suppressions/check",
    {
      schema: {
        tags: ["suppressions"],
        querystring: Type.Object(
          { channel: literals(channels), address: Text(320) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { channel, address } = request.query;
      checkAddresses([{ channel, address, path: "/querystring/address" }]);
      return request.inTenant((tx) => checkSuppression(tx, request.tenantId, channel, address));
    },
  );

  app.post(
    "/api/v1/suppressions",
    {
      schema: {
        tags: ["suppressions"],
        body: Type.Object(
          { channel: literals(channels), address: Text(320), reason: Type.Literal("manual") },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { channel, address } = request.body;
      checkAddresses([{ channel, address, path: "/body/address" }]);
      const row = await request.inTenant((tx) =>
        addManualSuppression(tx, request.tenantId, channel, address),
      );
      return reply.status(201).send(view(row));
    },
  );

  app.delete(
    "/api/v1/suppressions/:id",
    { schema: { tags: ["suppressions"], params: IdParams } },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await request.inTenant((tx) => deleteSuppression(tx, request.tenantId, id))))
        throw notFound("Suppression");
      return reply.status(204).send();
    },
  );
}
