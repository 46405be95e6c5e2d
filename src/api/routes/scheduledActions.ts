import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { FastifyInstance } from "fastify";
import { missedPolicies, scheduledActionStates } from "../../domain/schedule.js";
import { type FieldError, HeraldError, notFound } from "../../errors.js";
import {
  cancelScheduledAction,
  getScheduledAction,
  listScheduledActions,
  scheduleAction,
} from "../../scheduler/actions.js";
import type { ScheduledActionRegistry } from "../../scheduler/registry.js";
import { ListQuery, pageOf } from "../paging.js";
import { invalidFields } from "../problem.js";
import { DateTime, IdParams, literals, NoContent, Nullable, problemResponses, Text } from "../schemas.js";
import { NewEventBody } from "./events.js";

const ScheduledActionView = Type.Object({
  id: Type.String(),
  action: Type.String(),
  state: literals(scheduledActionStates),
  run_at: Type.String({ description: "The current slot (a one-off's time)" }),
  next_run_at: Nullable(Type.String({ description: "When it runs next, if it waits to run" })),
  every: Nullable(Type.String()),
  cron: Nullable(Type.String()),
  time_zone: Nullable(Type.String()),
  missed: literals(missedPolicies),
  payload: Type.Record(Type.String(), Type.Unknown()),
  key: Nullable(Type.String()),
  attempts: Type.Integer({ description: "Attempts of the current slot" }),
  max_attempts: Type.Integer({ description: "Attempts each slot gets" }),
  last_error: Nullable(Type.String()),
  last_run_at: Nullable(Type.String()),
  cancelled_at: Nullable(Type.String()),
  created_at: Type.String(),
  duplicate: Type.Optional(Type.Boolean()),
});

const NewScheduledActionBody = Type.Object(
  {
    action: Text(100),
    run_at: Type.Optional({ ...DateTime, description: "A one-off's time (RFC 3339)" }),
    every: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1 }), Type.String({ minLength: 1, maxLength: 50 })], {
        description: "Repeat at this interval: seconds, or an ISO 8601 duration such as PT5M",
      }),
    ),
    cron: Type.Optional(
      Type.String({ maxLength: 200, description: "Repeat on this five-field cron expression" }),
    ),
    time_zone: Type.Optional(
      Type.String({ maxLength: 100, description: "IANA time zone of cron (default UTC)" }),
    ),
    payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    key: Type.Optional(Text(200)),
    missed: Type.Optional(literals(missedPolicies)),
  },
  { additionalProperties: false },
);

/** Earliest and latest (from now) event times an `emit_event` payload may give, as `POST /api/v1/events`. */
const earliestEvent = Date.parse("2000-01-01T00:00:00Z");
const latestAheadMs = 24 * 3600 * 1000;

/** The errors of an `emit_event` payload, checked as a body of `POST /api/v1/events`. */
function eventPayloadErrors(payload: Record<string, unknown>): FieldError[] {
  const errors = [...Value.Errors(NewEventBody, payload)]
    .slice(0, 10)
    .map((e) => ({ path: `/body/payload${e.path}`, message: e.message }));
  const at = typeof payload.timestamp === "string" ? Date.parse(payload.timestamp) : undefined;
  if (at !== undefined && (at < earliestEvent || at > Date.now() + latestAheadMs))
    errors.push({
      path: "/body/payload/timestamp",
      message: "must be between 2000-01-01 and a day from now (leave it out: the event takes its run's time)",
    });
  return errors;
}

/** Scheduled actions: work run later, once (`run_at`) or repeating (`every`, `cron`), by the scheduler. */
export function scheduledActionRoutes(
  scope: FastifyInstance,
  { registry, maxAttempts }: { registry: ScheduledActionRegistry; maxAttempts?: number | undefined },
) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    "/api/v1/scheduled-actions",
    {
      schema: {
        tags: ["scheduled actions"],
        summary: "Schedule an action",
        description:
          "Exactly one of run_at, every and cron. The same key again answers 200 with the stored action and " +
          '"duplicate": true. Built-in action emit_event: its payload is an event as for POST /api/v1/events, ' +
          "appended to the log when due.",
        body: NewScheduledActionBody,
        response: { 200: ScheduledActionView, 201: ScheduledActionView, ...problemResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      if (b.action === "emit_event") {
        const errors = eventPayloadErrors(b.payload ?? {});
        if (errors.length > 0) throw invalidFields(errors);
      }
      const action = await request
        .inTenant((tx) =>
          scheduleAction(
            tx,
            {
              tenantId: request.tenantId,
              action: b.action,
              runAt: b.run_at,
              every: b.every,
              cron: b.cron,
              timeZone: b.time_zone,
              payload: b.payload,
              key: b.key,
              missed: b.missed,
            },
            { registry, maxAttempts },
          ),
        )
        .catch((error: unknown) => {
          // The scheduler names fields within the action; here they are within the body.
          if (error instanceof HeraldError && error.code === "validation_failed" && error.errors)
            throw invalidFields(error.errors.map((e) => ({ ...e, path: `/body${e.path}` })));
          throw error;
        });
      return reply.status(action.duplicate ? 200 : 201).send(action);
    },
  );

  app.get(
    "/api/v1/scheduled-actions",
    {
      schema: {
        tags: ["scheduled actions"],
        summary: "List scheduled actions, newest first",
        querystring: Type.Object(
          {
            ...ListQuery,
            action: Type.Optional(Text(100)),
            state: Type.Optional(literals(scheduledActionStates)),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            scheduled_actions: Type.Array(ScheduledActionView),
            next_cursor: Nullable(Type.String()),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { limit, cursor } = pageOf(q);
      const page = await request.inTenant((tx) =>
        listScheduledActions(tx, request.tenantId, { action: q.action, state: q.state }, limit, cursor),
      );
      return { scheduled_actions: page.items, next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/scheduled-actions/:id",
    {
      schema: {
        tags: ["scheduled actions"],
        summary: "One scheduled action",
        params: IdParams,
        response: { 200: ScheduledActionView, ...problemResponses },
      },
    },
    async (request) => {
      const action = await request.inTenant((tx) =>
        getScheduledAction(tx, request.tenantId, request.params.id),
      );
      if (!action) throw notFound("Scheduled action");
      return action;
    },
  );

  app.delete(
    "/api/v1/scheduled-actions/:id",
    {
      schema: {
        tags: ["scheduled actions"],
        summary: "Cancel a scheduled action",
        description:
          "204: it runs no more (a repeating action's slot running now finishes). 409 conflict: a one-off that " +
          "is running or has run.",
        params: IdParams,
        response: { 204: NoContent, 409: Type.Ref("Problem"), ...problemResponses },
      },
    },
    async (request, reply) => {
      await request.inTenant((tx) => cancelScheduledAction(tx, request.tenantId, request.params.id));
      return reply.status(204).send();
    },
  );
}
