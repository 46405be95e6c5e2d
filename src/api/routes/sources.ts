import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { WebhookSource } from "../../db/schema/index.js";
import { providers } from "../../domain/vocabularies.js";
import { notFound } from "../../errors.js";
import { lastReceived, listDeliveries } from "../../ingest/deliveries.js";
import {
  checkVerification,
  createSource,
  deleteSource,
  getSource,
  listSources,
  sourceUrl,
} from "../../tenancy/sources.js";
import { ListQuery, pageOf } from "../paging.js";
import { type PublicUrlOptions, publicUrlOf } from "../publicUrl.js";
import { IdParams, literals, NoContent, Nullable, problemResponses } from "../schemas.js";

const SourceView = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  name: Type.String(),
  verified: Type.Boolean(),
  url: Type.String(),
  /** `url` as the provider must call it: HERALD_PUBLIC_URL, else this request's scheme and host. */
  webhook_url: Type.String(),
  created_at: Type.String(),
  /** The last delivery received (accepted or rejected); null when none yet. */
  last_received_at: Nullable(Type.String()),
});

const DeliveryView = Type.Object({
  id: Type.String(),
  received_at: Type.String(),
  event_count: Type.Integer(),
  status: Type.String(),
  rejected_reason: Nullable(Type.String()),
  remote_ip: Nullable(Type.String()),
});

const CreateSource = Type.Object(
  {
    provider: literals(providers),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    verification: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1, maxLength: 4096 }))),
  },
  { additionalProperties: false },
);

/** A source as the API shows it; `request` and `urls` make its full webhook URL. */
const viewOf =
  (request: FastifyRequest, urls: PublicUrlOptions) =>
  (source: WebhookSource, lastReceivedAt: string | null = null) => ({
    id: source.id,
    provider: source.provider,
    name: source.name,
    verified: source.verification !== null,
    url: sourceUrl(source),
    webhook_url: publicUrlOf(
      { protocol: request.protocol, host: request.host, headers: request.headers, url: sourceUrl(source) },
      urls,
    ),
    created_at: source.createdAt.toISOString(),
    last_received_at: lastReceivedAt,
  });

/** Webhook sources: where a provider sends its events, with how its requests are verified. */
export function sourceRoutes(scope: FastifyInstance, urls: PublicUrlOptions = {}) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    "/api/v1/sources",
    { schema: { tags: ["sources"], body: CreateSource, response: { 201: SourceView, ...problemResponses } } },
    async (request, reply) => {
      const { body } = request;
      if (body.verification) checkVerification(body.provider, body.verification);
      const source = await request.inTenant((tx) => createSource(tx, request.tenantId, body));
      return reply.status(201).send(viewOf(request, urls)(source));
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
      const { limit, cursor } = pageOf(request.query);
      const { page, last } = await request.inTenant(async (tx) => {
        const page = await listSources(tx, request.tenantId, limit, cursor);
        const ids = page.items.map((s) => s.id);
        return { page, last: await lastReceived(tx, request.tenantId, ids) };
      });
      return {
        sources: page.items.map((s) => viewOf(request, urls)(s, last.get(s.id) ?? null)),
        next_cursor: page.nextCursor,
      };
    },
  );

  app.get(
    "/api/v1/sources/:id",
    { schema: { tags: ["sources"], params: IdParams, response: { 200: SourceView, ...problemResponses } } },
    async (request) => {
      const { id } = request.params;
      const found = await request.inTenant(async (tx) => {
        const source = await getSource(tx, request.tenantId, id);
        return source && { source, last: await lastReceived(tx, request.tenantId, [id]) };
      });
      if (!found) throw notFound("Source");
      return viewOf(request, urls)(found.source, found.last.get(id) ?? null);
    },
  );

  app.get(
    "/api/v1/sources/:id/deliveries",
    {
      schema: {
        tags: ["sources"],
        params: IdParams,
        querystring: Type.Object(
          { ...ListQuery, rejected: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ deliveries: Type.Array(DeliveryView), next_cursor: Nullable(Type.String()) }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const { limit, cursor } = pageOf(request.query);
      const page = await request.inTenant(async (tx) => {
        if (!(await getSource(tx, request.tenantId, id))) return undefined;
        return listDeliveries(
          tx,
          request.tenantId,
          { sourceId: id, rejected: request.query.rejected },
          limit,
          cursor,
        );
      });
      if (!page) throw notFound("Source");
      return { deliveries: page.items, next_cursor: page.nextCursor };
    },
  );

  app.delete(
    "/api/v1/sources/:id",
    { schema: { tags: ["sources"], params: IdParams, response: { 204: NoContent, ...problemResponses } } },
    async (request, reply) => {
      const { id } = request.params;
      const deleted = await request.inTenant((tx) => deleteSource(tx, request.tenantId, id));
      if (!deleted) throw notFound("Source");
      return reply.status(204).send();
    },
  );
}
