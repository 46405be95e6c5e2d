import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Db } from "../../db/client.js";
import type { WebhookSource } from "../../db/schema/index.js";
import { withTenant } from "../../db/tenant.js";
import { providers } from "../../domain/vocabularies.js";
import { notFound } from "../../errors.js";
import {
  checkVerification,
  createSource,
  deleteSource,
  getSource,
  listSources,
  sourceUrl,
} from "../../tenancy/sources.js";
import { IdParams, ListQuery, Nullable, problemResponses } from "../schemas.js";

const SourceView = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  name: Type.String(),
  verified: Type.Boolean(),
  url: Type.String(),
  created_at: Type.String(),
});

const CreateSource = Type.Object(
  {
    provider: Type.Union(providers.map((p) => Type.Literal(p))),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    verification: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: 4096 }))),
  },
  { additionalProperties: false },
);

const view = (source: WebhookSource) => ({
  id: source.id,
  provider: source.provider,
  name: source.name,
  verified: source.verification !== null,
  url: sourceUrl(source),
  created_at: source.createdAt.toISOString(),
});

export function sourceRoutes(app: FastifyInstance, db: Db) {
  app.post(
    "/api/v1/sources",
    { schema: { tags: ["sources"], body: CreateSource, response: { 201: SourceView, ...problemResponses } } },
    async (request, reply) => {
      const body = request.body as Static<typeof CreateSource>;
      if (body.verification) checkVerification(body.provider, body.verification);
      const source = await withTenant(db, request.tenantId, (tx) => createSource(tx, request.tenantId, body));
      return reply.status(201).send(view(source));
    },
  );

  app.get(
    "/api/v1/sources",
    {
      schema: {
        tags: ["sources"],
        querystring: Type.Object(ListQuery, { additionalProperties: false }),
        response: {
          200: Type.Object({ sources: Type.Array(SourceView), next_cursor: Nullable(Type.String()) }),
        },
      },
    },
    async (request) => {
      const { limit = 50, cursor } = request.query as { limit?: number; cursor?: string };
      const page = await withTenant(db, request.tenantId, (tx) =>
        listSources(tx, request.tenantId, limit, cursor),
      );
      return { sources: page.items.map(view), next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/sources/:id",
    { schema: { tags: ["sources"], params: IdParams, response: { 200: SourceView, ...problemResponses } } },
    async (request) => {
      const { id } = request.params as { id: string };
      const source = await withTenant(db, request.tenantId, (tx) => getSource(tx, request.tenantId, id));
      if (!source) throw notFound("Source");
      return view(source);
    },
  );

  app.delete(
    "/api/v1/sources/:id",
    { schema: { tags: ["sources"], params: IdParams, response: { 204: Type.Null(), ...problemResponses } } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const deleted = await withTenant(db, request.tenantId, (tx) => deleteSource(tx, request.tenantId, id));
      if (!deleted) throw notFound("Source");
      return reply.status(204).send();
    },
  );
}
