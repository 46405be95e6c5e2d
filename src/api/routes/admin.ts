import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Db } from "../../db/client.js";
import { notFound } from "../../errors.js";
import { issueApiKey, revokeApiKey } from "../../tenancy/apiKeys.js";
import { createTenant, getTenant, listTenants } from "../../tenancy/tenants.js";
import { adminAuth } from "../auth.js";
import { IdParams, NoContent, problemResponses } from "../schemas.js";

const TenantView = Type.Object({ id: Type.String(), name: Type.String(), created_at: Type.String() });

/** Tenants and keys; registered only when HERALD_ADMIN_TOKEN is set (otherwise these paths are 404). */
export function adminRoutes(app: FastifyInstance, systemDb: Db, adminToken: string) {
  app.register(async (scope) => {
    const admin = scope.withTypeProvider<TypeBoxTypeProvider>();
    admin.addHook("onRequest", adminAuth(adminToken));

    admin.post(
      "/api/v1/admin/tenants",
      {
        schema: {
          tags: ["admin"],
          body: Type.Object(
            { name: Type.String({ minLength: 1, maxLength: 200 }) },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ tenant: TenantView, api_key: Type.String() }), ...problemResponses },
        },
      },
      async (request, reply) => {
        const { name } = request.body;
        const { tenant, apiKey } = await createTenant(systemDb, name);
        return reply.status(201).send({
          tenant: { id: tenant.id, name: tenant.name, created_at: tenant.createdAt.toISOString() },
          api_key: apiKey,
        });
      },
    );

    admin.get(
      "/api/v1/admin/tenants",
      {
        schema: {
          tags: ["admin"],
          response: { 200: Type.Object({ tenants: Type.Array(TenantView) }), ...problemResponses },
        },
      },
      async () => ({
        tenants: (await listTenants(systemDb)).map((t) => ({
          id: t.id,
          name: t.name,
          created_at: t.createdAt.toISOString(),
        })),
      }),
    );

    admin.post(
      "/api/v1/admin/tenants/:id/api-keys",
      {
        schema: {
          tags: ["admin"],
          params: IdParams,
          response: { 201: Type.Object({ id: Type.String(), api_key: Type.String() }), ...problemResponses },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        if (!(await getTenant(systemDb, id))) throw notFound("Tenant");
        const issued = await issueApiKey(systemDb, id);
        return reply.status(201).send({ id: issued.id, api_key: issued.apiKey });
      },
    );

    admin.delete(
      "/api/v1/admin/api-keys/:id",
      { schema: { tags: ["admin"], params: IdParams, response: { 204: NoContent, ...problemResponses } } },
      async (request, reply) => {
        const { id } = request.params;
        if (!(await revokeApiKey(systemDb, id))) throw notFound("API key");
        return reply.status(204).send();
      },
    );
  });
}
