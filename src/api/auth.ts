import type { SQL } from "drizzle-orm";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Db, Executor } from "../db/client.js";
import { apiKeyPrefix, hashApiKey, secretsEqual } from "../domain/apiKey.js";
import { HeraldError } from "../errors.js";
import { apiKeyIsLive, apiKeyLive, authenticateApiKey } from "../tenancy/apiKeys.js";
import type { KnownKeys } from "../tenancy/knownKeys.js";
import { problemOf } from "./problem.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The tenant of the request's API key; set by `tenantAuth`. */
    tenantId: string;
    /**
     * The id of the request's API key while its liveness is unconfirmed (it came from `KnownKeys`): the
     * request's first tenant transaction confirms it, or `confirmKeyBeforeAnswer` does.
     */
    unconfirmedKey: string | undefined;
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

const revoked = () => new HeraldError("unauthorized", "The API key is unknown or revoked");

/**
 * onRequest hook: the API key decides the tenant; anything else is 401. A key this process has seen is taken
 * from memory, its liveness confirmed later in the request (a statement sent with the request's first tenant
 * transaction, which a revoked key rolls back, or one before the answer): a revoked key still answers 401
 * from the next request on, on every process, without a lookup of its own per request.
 */
export function tenantAuth(systemDb: Db, known: KnownKeys) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const key = bearer(request);
    if (key === undefined) throw new HeraldError("unauthorized", "Send Authorization: Bearer <api key>");
    const hash = apiKeyPrefix(key) === undefined ? undefined : hashApiKey(key);
    const remembered = hash === undefined ? undefined : known.get(hash);
    if (remembered !== undefined) {
      request.tenantId = remembered.tenantId;
      request.unconfirmedKey = remembered.keyId;
      return;
    }
    const owner = await authenticateApiKey(systemDb, key);
    if (owner === null || hash === undefined) throw revoked();
    known.remember(hash, owner);
    request.tenantId = owner.tenantId;
  };
}

/**
 * `work` on `executor` with the request's remembered key confirmed by a statement sent beside the work's own.
 * In the request's tenant transaction the statement goes ahead of them on its connection (answered with
 * them, no round trip of its own): revoked, the work is rolled back. On the system handle, for reads outside
 * a transaction (`request.read`), it goes on another connection at the same time: what was read is dropped.
 * Either way the answer is then 401. A work that fails leaves the key to `confirmKeyBeforeAnswer`.
 */
export async function confirmingKey<E extends Executor, T>(
  request: FastifyRequest,
  known: KnownKeys,
  executor: E,
  work: (executor: E) => Promise<T>,
): Promise<T> {
  const keyId = request.unconfirmedKey;
  if (keyId === undefined) return work(executor);
  const [live, result] = await Promise.all([apiKeyIsLive(executor, keyId), work(executor)]);
  request.unconfirmedKey = undefined;
  if (live) return result;
  known.forget(keyId);
  throw revoked();
}

/**
 * `work` as one statement outside a tenant transaction, for a door that must be one round trip: it gets the
 * system handle and the condition that the request's remembered key is live (undefined when it was confirmed
 * already), which its statement checks before it keeps anything. `work` resolves to undefined when the
 * condition was false: the key is forgotten and the answer is 401. The tenant is the key's, which `work`
 * writes under explicitly: row-level security is not what keeps it to its tenant.
 */
export async function inOneStatement<T>(
  request: FastifyRequest,
  known: KnownKeys,
  systemDb: Db,
  work: (db: Db, keyLive: SQL | undefined) => Promise<T | undefined>,
): Promise<T> {
  const keyId = request.unconfirmedKey;
  const result = await work(systemDb, keyId === undefined ? undefined : apiKeyLive(keyId));
  request.unconfirmedKey = undefined;
  if (result !== undefined) return result;
  if (keyId !== undefined) known.forget(keyId);
  throw revoked();
}

/**
 * onSend hook: a remembered key no tenant transaction confirmed (the request failed before one, or had none)
 * is confirmed before anything but a server failure is answered; revoked, the answer is 401 instead. An error thrown here would
 * skip the problem handler, so the refusal (or the database's failure) is written as its problem here.
 */
export function confirmKeyBeforeAnswer(systemDb: Db, known: KnownKeys) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const keyId = request.unconfirmedKey;
    // A server failure tells a revoked key nothing, and its answer must not wait on the database again
    // (a request is answered within the database bound, and the failure is usually the database).
    if (keyId === undefined || reply.statusCode >= 500) return payload;
    request.unconfirmedKey = undefined;
    let refusal: Error;
    try {
      if (await apiKeyIsLive(systemDb, keyId)) return payload;
      known.forget(keyId);
      refusal = revoked();
    } catch (error) {
      refusal = error as Error;
    }
    const body = problemOf(refusal);
    if (body.status >= 500) request.log.error({ err: refusal }, "request failed");
    reply.status(body.status).type("application/problem+json");
    return JSON.stringify(body);
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
