import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { type DestinationPolicy, denyAll, webhookUrlProblem } from "../../bus/sinks/destination.js";
import { subscriptionHealth } from "../../bus/stats.js";
import {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listSubscriptions,
  setPaused,
} from "../../bus/subscriptions.js";
import type { Subscription } from "../../db/schema/index.js";
import { notFound } from "../../errors.js";
import { ListQuery, pageOf } from "../paging.js";
import { invalidFields } from "../problem.js";
import { EventTypePattern, IdParams, NoContent, Nullable, problemResponses } from "../schemas.js";

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
    event_types: Type.Array(EventTypePattern, { minItems: 1, maxItems: 100 }),
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

/** How the subscription is doing over the last hour (`bus/stats.ts`, `subscriptionHealth`). */
const Health = Type.Object({
  window_seconds: Type.Integer(),
  delivered: Type.Integer(),
  failed: Type.Integer(),
  success_rate: Nullable(Type.Number()),
  latency_ms: Type.Object({ p50: Nullable(Type.Number()), p95: Nullable(Type.Number()) }),
  last_delivered_at: Nullable(Type.String()),
  last_error: Nullable(Type.Object({ message: Type.String(), at: Type.String() })),
});
const SubscriptionWithHealth = Type.Object({ ...SubscriptionView.properties, health: Health });

const view = (s: Subscription) => ({
  id: s.id,
  name: s.name,
  event_types: s.eventTypes,
  sink: s.sink,
  ordered: s.ordered,
  max_attempts: s.maxAttempts,
  paused: s.pausedAt !== null,
  created_at: s.createdAt.toISOString(),
});

export interface SubscriptionRouteOptions {
  /** Where webhook sinks may connect. @defaultValue `denyAll`: public addresses only */
  destinations?: DestinationPolicy;
  /** `max_attempts` of a subscription created without one (HERALD_MAX_ATTEMPTS). @defaultValue 5 */
  defaultMaxAttempts?: number;
}

/** Subscriptions of the event bus: which event types go to which sink. */
export function subscriptionRoutes(
  scope: FastifyInstance,
  { destinations = denyAll, defaultMaxAttempts = 5 }: SubscriptionRouteOptions = {},
) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

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
      const { body } = request;
      // A literal denied address is refused now; a name is checked each time it is dialled.
      const urlProblem =
        body.sink.type === "webhook" ? webhookUrlProblem(body.sink.url, destinations) : undefined;
      if (urlProblem !== undefined) throw invalidFields([{ path: "/body/sink/url", message: urlProblem }]);
      const created = await request.inTenant((tx) =>
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
      const { limit, cursor } = pageOf(request.query);
      const page = await request.inTenant((tx) => listSubscriptions(tx, request.tenantId, limit, cursor));
      return { subscriptions: page.items.map(view), next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/subscriptions/:id",
    {
      schema: {
        tags: ["bus"],
        params: IdParams,
        response: { 200: SubscriptionWithHealth, ...problemResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await request.inTenant(async (tx) => {
        const subscription = await getSubscription(tx, request.tenantId, id);
        return subscription && { subscription, health: await subscriptionHealth(tx, request.tenantId, id) };
      });
      if (!found) throw notFound("Subscription");
      return { ...view(found.subscription), health: found.health };
    },
  );

  app.delete(
    "/api/v1/subscriptions/:id",
    { schema: { tags: ["bus"], params: IdParams, response: { 204: NoContent, ...problemResponses } } },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await request.inTenant((tx) => deleteSubscription(tx, request.tenantId, id)))) {
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
        const updated = await request.inTenant((tx) =>
          setPaused(tx, request.tenantId, request.params.id, action === "pause"),
        );
        if (!updated) throw notFound("Subscription");
        return view(updated);
      },
    );
  }
}
