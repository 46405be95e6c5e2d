import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Db } from "../../db/client.js";
import { preparePartitions } from "../../db/partitions.js";
import { eventSources } from "../../domain/vocabularies.js";
import { notFound } from "../../errors.js";
import { publicEvent } from "../../events/columns.js";
import { getEvent } from "../../events/read.js";
import type { NewEvent } from "../../events/types.js";
import { writeEvent, writeEvents } from "../../events/write.js";
import { invalidFields } from "../problem.js";
import { DateTime, EventType, IdParams, literals, problemResponses } from "../schemas.js";

const Id = Type.String({ minLength: 1, maxLength: 200 });
export const NewEventBody = Type.Object(
  {
    event_type: EventType,
    source: literals(eventSources),
    payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    timestamp: Type.Optional(DateTime),
    contact_id: Type.Optional(Id),
    session_id: Type.Optional(Id),
    message_id: Type.Optional(Type.String({ format: "uuid" })),
    event_key: Type.Optional(Id),
    correlation_id: Type.Optional(Id),
    causation_id: Type.Optional(Id),
    sequence_number: Type.Optional(Type.Integer({ minimum: 0 })),
    schema_version: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);
type NewEventBody = Static<typeof NewEventBody>;

const EventView = Type.Object(
  {
    id: Type.String(),
    event_type: Type.String(),
    source: Type.String(),
    timestamp: Type.String(),
    created_at: Type.String(),
    duplicate: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

/** Earliest and latest (from now) event times accepted: each month of the log is a partition. */
const earliestEvent = Date.parse("2000-01-01T00:00:00Z");
const latestAheadMs = 24 * 3600 * 1000;

/** The event time of a request body; outside 2000 … tomorrow is refused (it would create partitions at will). */
function eventTime(timestamp: string | undefined, path: string): Date | undefined {
  if (!timestamp) return undefined;
  const at = new Date(timestamp);
  if (at.getTime() < earliestEvent || at.getTime() > Date.now() + latestAheadMs) {
    throw invalidFields(
      [{ path, message: "out of range" }],
      "timestamp must be between 2000-01-01 and a day from now",
    );
  }
  return at;
}

const toNewEvent = (tenantId: string, body: NewEventBody, path = "/body/timestamp"): NewEvent => ({
  tenantId,
  eventType: body.event_type,
  source: body.source,
  payload: body.payload,
  metadata: body.metadata,
  timestamp: eventTime(body.timestamp, path),
  contactId: body.contact_id,
  sessionId: body.session_id,
  messageId: body.message_id,
  eventKey: body.event_key,
  correlationId: body.correlation_id,
  causationId: body.causation_id,
  sequenceNumber: body.sequence_number,
  schemaVersion: body.schema_version,
});

/**
 * Partitions for the months of events given a time, made before the write's transaction opens (see
 * db/partitions.ts: made inside it, a month's partition could deadlock with concurrent requests).
 */
const prepareMonths = (db: Db, events: NewEvent[]) =>
  preparePartitions(
    db,
    ["events"],
    events.flatMap((e) => (e.timestamp ? [e.timestamp] : [])),
  );

/** The event log: events written by the product (one or a batch), read back by id. */
export function eventRoutes(scope: FastifyInstance, db: Db) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    "/api/v1/events",
    {
      schema: {
        tags: ["events"],
        body: NewEventBody,
        response: { 200: EventView, 201: EventView, ...problemResponses },
      },
    },
    async (request, reply) => {
      const input = toNewEvent(request.tenantId, request.body);
      await prepareMonths(db, [input]);
      const { event, duplicate } = await request.inTenant((tx) => writeEvent(tx, input));
      return reply
        .status(duplicate ? 200 : 201)
        .send({ ...publicEvent(event), ...(duplicate ? { duplicate: true } : {}) });
    },
  );

  app.post(
    "/api/v1/events/batch",
    {
      schema: {
        tags: ["events"],
        body: Type.Object(
          { events: Type.Array(NewEventBody, { minItems: 1, maxItems: 1000 }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            results: Type.Array(Type.Object({ id: Type.String(), duplicate: Type.Boolean() })),
          }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const { events } = request.body;
      const inputs = events.map((e, i) => toNewEvent(request.tenantId, e, `/body/events/${i}/timestamp`));
      await prepareMonths(db, inputs);
      const results = await request.inTenant((tx) => writeEvents(tx, inputs));
      return reply
        .status(201)
        .send({ results: results.map((r) => ({ id: r.event.id, duplicate: r.duplicate })) });
    },
  );

  app.get(
    "/api/v1/events/:id",
    { schema: { tags: ["events"], params: IdParams, response: { 200: EventView, ...problemResponses } } },
    async (request) => {
      const event = await request.inTenant((tx) => getEvent(tx, request.tenantId, request.params.id));
      if (!event) throw notFound("Event");
      return publicEvent(event);
    },
  );
}
