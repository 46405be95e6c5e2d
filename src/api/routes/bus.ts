import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { listDeadLetters, retryDeadLetters } from "../../bus/deadLetters.js";
import { checkIntegrity } from "../../bus/integrity.js";
import { replayEvents } from "../../bus/replay.js";
import { type DestinationPolicy, denyAll, webhookUrlProblem } from "../../bus/sinks/destination.js";
import { busStats } from "../../bus/stats.js";
import {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listSubscriptions,
  setPaused,
} from "../../bus/subscriptions.js";
import type { Db } from "../../db/client.js";
import type { Subscription } from "../../db/schema/index.js";
import { withTenant } from "../../db/tenant.js";
import { HeraldError, notFound } from "../../errors.js";
import { IdParams, ListQuery, Nullable, problemResponses, Uuid } from "../schemas.js";

const Pattern = Type.String({ pattern: "^(\\*|[a-z0-9_]+(\\.[a-z0-9_]+)*(\\.\\*)?)$", maxLength: 200 });
const Sink = Type.Union([
  Type.Object(
    {
      type: Type.Literal("webhook"),
      url: Type.String({ format: "uri", pattern: "^https?://", maxLength: 2000 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal("nats"),
      subject: Type.String({ pattern: "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", maxLength: 200 }),
    },
    { additionalProperties: false },
  ),
]);
const CreateSubscription = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    event_types: Type.Array(Pattern, { minItems: 1, maxItems: 100 }),
    sink: Sink,
    ordered: Type.Optional(Type.Boolean()),
    max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);
const SubscriptionView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  event_types: Type.Array(Type.String()),
  sink: Type.Record(Type.String(), Type.String()),
  ordered: Type.Boolean(),
  max_attempts: Type.Integer(),
  paused: Type.Boolean(),
  created_at: Type.String(),
  secret: Type.Optional(Type.String()),
});

const view = (s: Subscription) => ({
  id: s.id,
  name: s.name,
  event_types: s.eventTypes,
  sink: s.sink as Record<string, string>,
  ordered: s.ordered,
  max_attempts: s.maxAttempts,
  paused: s.pausedAt !== null,
  created_at: s.createdAt.toISOString(),
});

const DeadLetterView = Type.Object({
  id: Type.String(),
  subscription_id: Type.String(),
  event_id: Type.String(),
  event_type: Type.String(),
  attempts: Type.Integer(),
  last_error: Nullable(Type.String()),
  failed_at: Type.String(),
});

const day = (value: string, endOfDay: boolean) => {
  // A date without a time covers the whole day (UTC): `end` then means the start of the next day.
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const d = new Date(`${value}T00:00:00.000Z`);
    return endOfDay ? new Date(d.getTime() + 86_400_000) : d;
  }
  return new Date(value);
};
const DateOrTime = Type.String({ anyOf: [{ format: "date" }, { format: "date-time" }] });

export interface BusRouteOptions {
  /** Where webhook sinks may connect. @defaultValue `denyAll`: public addresses only */
  destinations?: DestinationPolicy;
  /** `max_attempts` of a subscription created without one (HERALD_MAX_ATTEMPTS). @defaultValue 5 */
  defaultMaxAttempts?: number;
}

export function busRoutes(
  app: FastifyInstance,
  db: Db,
  { destinations = denyAll, defaultMaxAttempts = 5 }: BusRouteOptions = {},
) {
  const inTenant = <T>(tenantId: string, work: Parameters<typeof withTenant<T>>[2]) =>
    withTenant(db, tenantId, work);

  app.post(
    "/api/v1/subscriptions",
    {
      schema: {
        tags: ["bus"],
        body: CreateSubscription,
        response: { 201: SubscriptionView, ...problemResponses },
      },
    },
    async (request, reply) => {
      const body = request.body as Static<typeof CreateSubscription>;
      // A literal denied address is refused now; a name is checked each time it is dialled.
      const urlProblem =
        body.sink.type === "webhook" ? webhookUrlProblem(body.sink.url, destinations) : undefined;
      if (urlProblem !== undefined) {
        throw new HeraldError("validation_failed", `/body/sink/url ${urlProblem}`, [
          { path: "/body/sink/url", message: urlProblem },
        ]);
      }
      const created = await inTenant(request.tenantId, (tx) =>
        createSubscription(tx, request.tenantId, {
          name: body.name,
          eventTypes: body.event_types,
          sink: body.sink,
          ordered: body.ordered,
          maxAttempts: body.max_attempts ?? defaultMaxAttempts,
        }),
      );
      return reply.status(201).send({ ...view(created), secret: created.secret });
    },
  );

  app.get(
    "/api/v1/subscriptions",
    {
      schema: {
        tags: ["bus"],
        querystring: Type.Object(ListQuery, { additionalProperties: false }),
        response: {
          200: Type.Object({
            subscriptions: Type.Array(SubscriptionView),
            next_cursor: Nullable(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const { limit = 50, cursor } = request.query as { limit?: number; cursor?: string };
      const page = await inTenant(request.tenantId, (tx) =>
        listSubscriptions(tx, request.tenantId, limit, cursor),
      );
      return { subscriptions: page.items.map(view), next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/subscriptions/:id",
    { schema: { tags: ["bus"], params: IdParams, response: { 200: SubscriptionView, ...problemResponses } } },
    async (request) => {
      const { id } = request.params as { id: string };
      const found = await inTenant(request.tenantId, (tx) => getSubscription(tx, request.tenantId, id));
      if (!found) throw notFound("Subscription");
      return view(found);
    },
  );

  app.delete(
    "/api/v1/subscriptions/:id",
    { schema: { tags: ["bus"], params: IdParams, response: { 204: Type.Null(), ...problemResponses } } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await inTenant(request.tenantId, (tx) => deleteSubscription(tx, request.tenantId, id)))) {
        throw notFound("Subscription");
      }
      return reply.status(204).send();
    },
  );

  for (const action of ["pause", "resume"] as const) {
    app.post(
      `/api/v1/subscriptions/:id/${action}`,
      {
        schema: { tags: ["bus"], params: IdParams, response: { 200: SubscriptionView, ...problemResponses } },
      },
      async (request) => {
        const { id } = request.params as { id: string };
        const updated = await inTenant(request.tenantId, (tx) =>
          setPaused(tx, request.tenantId, id, action === "pause"),
        );
        if (!updated) throw notFound("Subscription");
        return view(updated);
      },
    );
  }

  app.get(
    "/api/v1/dead-letters",
    {
      schema: {
        tags: ["bus"],
        querystring: Type.Object(
          { ...ListQuery, subscription_id: Type.Optional(Uuid) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            dead_letters: Type.Array(DeadLetterView),
            next_cursor: Nullable(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query as { limit?: number; cursor?: string; subscription_id?: string };
      const page = await inTenant(request.tenantId, (tx) =>
        listDeadLetters(tx, request.tenantId, { subscriptionId: q.subscription_id }, q.limit ?? 50, q.cursor),
      );
      return { dead_letters: page.items, next_cursor: page.nextCursor };
    },
  );

  app.post(
    "/api/v1/dead-letters/:id/retry",
    {
      schema: {
        tags: ["bus"],
        params: IdParams,
        response: { 202: Type.Object({ retried: Type.Integer() }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const retried = await inTenant(request.tenantId, (tx) =>
        retryDeadLetters(tx, request.tenantId, { id }),
      );
      if (retried === 0) throw notFound("Dead letter");
      return reply.status(202).send({ retried });
    },
  );

  app.post(
    "/api/v1/dead-letters/retry",
    {
      schema: {
        tags: ["bus"],
        body: Type.Object(
          {
            subscription_id: Type.Optional(Uuid),
            event_type: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ retried: Type.Integer() }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const body = (request.body ?? {}) as { subscription_id?: string; event_type?: string };
      const retried = await inTenant(request.tenantId, (tx) =>
        retryDeadLetters(tx, request.tenantId, {
          subscriptionId: body.subscription_id,
          eventType: body.event_type,
        }),
      );
      return reply.status(202).send({ retried });
    },
  );

  app.post(
    "/api/v1/replays",
    {
      schema: {
        tags: ["bus"],
        body: Type.Object(
          {
            subscription_id: Uuid,
            start: Type.Optional(DateOrTime),
            end: Type.Optional(DateOrTime),
            event_types: Type.Optional(Type.Array(Pattern, { minItems: 1, maxItems: 100 })),
            correlation_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: {
          202: Type.Object({ replay_id: Type.String(), events: Type.Integer() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const body = request.body as {
        subscription_id: string;
        start?: string;
        end?: string;
        event_types?: string[];
        correlation_id?: string;
      };
      const start = body.start ? day(body.start, false) : undefined;
      const end = body.end ? day(body.end, true) : undefined;
      if (start && end && start >= end) {
        throw new HeraldError("validation_failed", "start must be before end", [
          { path: "/body/end", message: "must be after start" },
        ]);
      }
      const result = await inTenant(request.tenantId, async (tx) => {
        if (!(await getSubscription(tx, request.tenantId, body.subscription_id)))
          throw notFound("Subscription");
        return replayEvents(tx, {
          tenantId: request.tenantId,
          subscriptionId: body.subscription_id,
          start,
          end,
          eventTypes: body.event_types,
          correlationId: body.correlation_id,
        });
      });
      return reply.status(202).send({ replay_id: result.replayId, events: result.events });
    },
  );

  app.get(
    "/api/v1/bus/stats",
    {
      schema: {
        tags: ["bus"],
        querystring: Type.Object(
          {
            window_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86400 })),
            slow_ms: Type.Optional(Type.Integer({ minimum: 1 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query as { window_seconds?: number; slow_ms?: number };
      return inTenant(request.tenantId, (tx) =>
        busStats(tx, request.tenantId, { windowSeconds: q.window_seconds, slowThresholdMs: q.slow_ms }),
      );
    },
  );

  app.get("/api/v1/bus/integrity", { schema: { tags: ["bus"] } }, async (request) =>
    inTenant(request.tenantId, (tx) => checkIntegrity(tx, request.tenantId)),
  );
}
