import type { FastifyReply, FastifyRequest } from "fastify";
import type { Db } from "../db/client.js";
import { secretsEqual } from "../domain/apiKey.js";
import { HeraldError } from "../errors.js";
import { authenticateApiKey } from "../tenancy/apiKeys.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The tenant of the request's API key; set by `tenantAuth`. */
    tenantId: string;
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** onRequest hook: the API key decides the tenant; anything else is 401. */
export function tenantAuth(systemDb: Db) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const key = bearer(request);
    if (key === undefined) throw new HeraldError("unauthorized", "Send Authorization: Bearer <api key>");
    const owner = await authenticateApiKey(systemDb, key);
    if (owner === null) throw new HeraldError("unauthorized", "The API key is unknown or revoked");
    request.tenantId = owner.tenantId;
  };
}

/** onRequest hook of admin routes; the routes are not registered at all without an admin token. */
export function adminAuth(adminToken: string) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const token = bearer(request);
    if (token === undefined || !secretsEqual(token, adminToken)) {
      throw new HeraldError("unauthorized", "Send Authorization: Bearer $HERALD_ADMIN_TOKEN");
    }
  };
}
