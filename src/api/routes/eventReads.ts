import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { jsonWithRaw, RawJson } from "../../domain/rawJson.js";
import type { EventFilter } from "../../events/filter.js";
import { firstPageJson } from "../../events/pages.js";
import { type ReadPosition, readEventsJson } from "../../events/query.js";
import { eventStats, type StatsDimension } from "../../events/stats.js";
import { countEvents } from "../../events/totals.js";
import { EventFilterQuery, eventFilterOf } from "../eventFilters.js";
import { defaultLimit } from "../paging.js";
import { invalidFields } from "../problem.js";
import { literals, Text } from "../schemas.js";

/**
 * Reading the event log: the filtered list with its exact total and time range, timelines of a contact or a
 * session, counts and stats. Pages never skip or repeat an event (see `readEvents`); the cursor carries the
 * snapshot of the first page, and the list's total and time range, which are those of that snapshot.
 */

const limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: defaultLimit }));
// A snapshot lists the transactions running when it was taken: longer than other lists' cursors.
const cursor = Type.Optional(Type.String({ maxLength: 4096 }));

const Filters = EventFilterQuery.properties;

const ListQuery = Type.Object(
  { ...Filters, order: Type.Optional(literals(["asc", "desc"] as const)), limit, cursor },
  { additionalProperties: false },
);
const TimelineQuery = Type.Object({ limit, cursor }, { additionalProperties: false });
const TimelineParams = Type.Object({ id: Text(200) }, { additionalProperties: false });
const StatsQuery = Type.Object(
  { ...Filters, group_by: Type.Optional(Type.String({ maxLength: 40 })) },
  { additionalProperties: false },
);

/** What a list's cursor holds: where the next page starts, and the first page's total and time range. */
interface ListCursor extends ReadPosition {
  total?: number;
  range?: [string | null, string | null];
}

const encodeCursor = (value: ListCursor) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A cursor's content; it was sealed to its list (route, tenant, filter), so only its shape is checked. */
function decodeCursor(value: string | undefined): ListCursor | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as ListCursor;
    if (
      typeof parsed.snapshot === "string" &&
      /^\d+:\d+:[\d,]*$/.test(parsed.snapshot) &&
      typeof parsed.ts === "string" &&
      /^-?\d+$/.test(parsed.ts) &&
      typeof parsed.id === "string"
    )
      return parsed;
  } catch {
    // refused below
  }
  throw invalidFields([{ path: "/querystring/cursor", message: "invalid cursor" }]);
}

const dimensions: readonly StatsDimension[] = ["type", "source", "day", "hour"];

/** `group_by`: one dimension, or two different ones separated by a comma (`type,day`). */
function groupByOf(value: string | undefined): StatsDimension[] {
  const names = (value ?? "type").split(",");
  const valid =
    names.length <= 2 &&
    names.every((n) => (dimensions as readonly string[]).includes(n)) &&
    new Set(names).size === names.length;
  if (!valid)
    throw invalidFields(
      [{ path: "/querystring/group_by", message: `must be one or two of ${dimensions.join(", ")}` }],
      `group_by must be one of ${dimensions.join(", ")}, or two of them separated by a comma`,
    );
  return names as StatsDimension[];
}

export function eventReadRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/events",
    { schema: { tags: ["events"], querystring: ListQuery } },
    async (request, reply) => {
      const q = request.query;
      const filter = eventFilterOf(request.tenantId, q);
      const after = decodeCursor(q.cursor);
      const order = q.order ?? "desc";
      const limit = q.limit ?? defaultLimit;
      // The first page: the total and time range, then the page read in the snapshot they were counted in; a
      // later page reads in that snapshot too, and carries the first page's total and range in its cursor.
      const { page, total, range } = await request.read(async (db) => {
        if (after)
          return {
            page: await readEventsJson(db, filter, { order, limit, after }),
            total: after.total ?? 0,
            range: after.range ?? [null, null],
          };
        const first = await firstPageJson(db, filter, { order, limit });
        const { start, end } = first.totals.timeRange;
        return { page: first.page, total: first.totals.total, range: [start, end] };
      });
      reply.type("application/json; charset=utf-8").serializer(jsonWithRaw);
      return {
        events: new RawJson(page.json),
        total,
        time_range: { start: range[0], end: range[1] },
        next_cursor: page.next ? encodeCursor({ ...page.next, total, range: [range[0]!, range[1]!] }) : null,
      };
    },
  );

  for (const [path, field] of [
    ["/api/v1/contacts/:id/events", "contactId"],
    ["/api/v1/sessions/:id/events", "sessionId"],
  ] as const) {
    app.get(
      path,
      { schema: { tags: ["events"], params: TimelineParams, querystring: TimelineQuery } },
      async (request, reply) => {
        const filter: EventFilter = { tenantId: request.tenantId, [field]: request.params.id };
        const page = await request.read((db) =>
          readEventsJson(db, filter, {
            order: "asc",
            limit: request.query.limit ?? defaultLimit,
            after: decodeCursor(request.query.cursor),
          }),
        );
        reply.type("application/json; charset=utf-8").serializer(jsonWithRaw);
        return {
          events: new RawJson(page.json),
          next_cursor: page.next ? encodeCursor(page.next) : null,
        };
      },
    );
  }

  app.get(
    "/api/v1/events/count",
    { schema: { tags: ["events"], querystring: Type.Object(Filters, { additionalProperties: false }) } },
    async (request) => {
      const filter = eventFilterOf(request.tenantId, request.query);
      return { count: await request.read((db) => countEvents(db, filter)) };
    },
  );

  app.get(
    "/api/v1/events/stats",
    { schema: { tags: ["events"], querystring: StatsQuery } },
    async (request) => {
      const groupBy = groupByOf(request.query.group_by);
      const filter = eventFilterOf(request.tenantId, request.query);
      return request.read((db) => eventStats(db, filter, groupBy));
    },
  );
}
