import type { FastifyInstance, FastifyRequest } from "fastify";
import { openCursor, sealCursor } from "../domain/cursor.js";

/**
 * Lists page with cursors sealed to their list: a `cursor` parameter is opened (checked) before the handler
 * runs, and a `next_cursor` in the answer is sealed on the way out, both against the route, the tenant, the
 * path parameters and every query parameter but `cursor` and `limit` (a client may change its page size).
 */
export function sealListCursors(scope: FastifyInstance, key: Buffer) {
  scope.addHook("preHandler", async (request) => {
    const query = request.query as Record<string, unknown> | undefined;
    if (typeof query?.cursor === "string") query.cursor = openCursor(query.cursor, listOf(request), key);
  });
  scope.addHook("preSerialization", async (request, _reply, payload: unknown) => {
    if (payload === null || typeof payload !== "object" || !("next_cursor" in payload)) return payload;
    const next = (payload as { next_cursor: unknown }).next_cursor;
    if (typeof next !== "string") return payload;
    return { ...payload, next_cursor: sealCursor(next, listOf(request), key) };
  });
}

function listOf(request: FastifyRequest): string {
  const { cursor: _cursor, limit: _limit, ...filter } = (request.query ?? {}) as Record<string, unknown>;
  const sorted = (value: object) => Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    request.method,
    request.routeOptions.url,
    request.tenantId,
    sorted((request.params ?? {}) as object),
    sorted(filter),
  ]);
}
