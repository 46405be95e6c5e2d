import { PassThrough } from "node:stream";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { ExportAbortedError, exportEvents, exportFormats, exportMedia } from "../../events/export/index.js";
import { eventTotals } from "../../events/totals.js";
import { EventFilterQuery, eventFilterOf } from "../eventFilters.js";
import { literals, problemResponses } from "../schemas.js";

/** The list's filters, and the format. */
const ExportQuery = Type.Object(
  { format: Type.Optional(literals(exportFormats)), ...EventFilterQuery.properties },
  { additionalProperties: false },
);

/**
 * `GET /api/v1/events/export`: the events matching the filters as one streamed file, oldest first (NDJSON by
 * default, CSV or Parquet). Counted first (`X-Herald-Total`), then read in the snapshot of that count, so the
 * file holds exactly that many rows however writers go on meanwhile. Each batch is read in a short tenant
 * transaction of its own. A failure before the first byte is a problem response; after it, the response is
 * cut short (destroyed, never ended as if complete) and the failure logged.
 */
export function eventExportRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/events/export",
    {
      // A HEAD would run the whole export to send no body.
      exposeHeadRoute: false,
      schema: { tags: ["events"], querystring: ExportQuery, response: problemResponses },
    },
    async (request, reply) => {
      const q = request.query;
      const filter = eventFilterOf(request.tenantId, q);
      const format = q.format ?? "ndjson";
      // Reads outside a transaction, like the list's (`request.read`): each batch one statement naming the tenant.
      const totals = await request.read((db) => eventTotals(db, filter));

      const body = new PassThrough();
      const started = performance.now();
      exportEvents((read) => request.read(read), filter, format, body, {
        totals,
      }).then(
        (result) =>
          request.log.info(
            { format, ...result, ms: Math.round(performance.now() - started) },
            "events exported",
          ),
        (error: unknown) => {
          if (error instanceof ExportAbortedError)
            request.log.info({ format }, "events export: the client went away before the end");
          else request.log.error({ err: error, format }, "events export failed; the response is cut short");
          body.destroy(error instanceof Error ? error : new Error(String(error)));
        },
      );
      const media = exportMedia[format];
      return reply
        .header("content-type", media.contentType)
        .header("content-disposition", `attachment; filename="events.${media.extension}"`)
        .header("x-herald-total", String(totals.total))
        .send(body);
    },
  );
}
