import type { FastifyInstance, FastifyRequest } from "fastify";
import { openCursor, sealCursor } from "../domain/cursor.js";

/**
 * Lists page with cursors sealed to their list: a `cursor` parameter is opened (checked) before the handler
 * runs, and a `next_cursor` in the answer is sealed on the way out, both against the route, the tenant, the
 * path parameters and every query parameter but `cursor` and `limit` (a client may change its page size).
 */
export function sealListCursors(scope: FastifyInstance, key: Buffer) {
  scope.addHook("preHandler", async (request) => {
    const { query } = request;
    if (isRecord(query) && typeof query.cursor === "string") {
      query.cursor = openCursor(query.cursor, listOf(request), key); // in place: the handler reads it
    }
  });
  scope.addHook("preSerialization", async (request, _reply, payload: unknown) => {
    if (!isRecord(payload) || typeof payload.next_cursor !== "string") return payload;
    return { ...payload, next_cursor: sealCursor(payload.next_cursor, listOf(request), key) };
  });
}

/** A hook sees the request parts and answers of every route, whatever their schema. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object";
}

function listOf(request: FastifyRequest): string {
  const { cursor: _cursor, limit: _limit, ...filter } = isRecord(request.query) ? request.query : {};
  const sorted = (value: object) => Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    request.method,
    request.routeOptions.url,
    request.tenantId,
    sorted(isRecord(request.params) ? request.params : {}),
    sorted(filter),
  ]);
}
