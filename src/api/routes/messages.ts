import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Db } from "../../db/client.js";
import type { OutboundMessage } from "../../db/schema/index.js";
import { withTenant } from "../../db/tenant.js";
import { addressProblem } from "../../domain/address.js";
import { channels, messageStatuses, suppressionReasons } from "../../domain/vocabularies.js";
import { HeraldError, notFound } from "../../errors.js";
import { eventsOfMessage, listMessageEvents } from "../../messages/events.js";
import { getMessage, listMessages } from "../../messages/outbound.js";
import { registerMessage, registerMessages } from "../../messages/register.js";
import {
  addManualSuppression,
  checkSuppression,
  deleteSuppression,
  listSuppressions,
} from "../../messages/suppressions.js";
import { IdParams, ListQuery, problemResponses, Uuid } from "../schemas.js";

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });

const NewMessageBody = Type.Object(
  {
    channel: literals(channels),
    provider: Text(50),
    to: Text(320),
    provider_message_id: Type.Optional(Text(500)),
    from: Type.Optional(Text(320)),
    subject: Type.Optional(Type.String({ maxLength: 2000 })),
    contact_id: Type.Optional(Text(200)),
    campaign_id: Type.Optional(Uuid),
    dedupe_key: Type.Optional(Text(200)),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    sent_at: Type.Optional(Type.String({ format: "date-time" })),
  },
  { additionalProperties: false },
);
type NewMessageBody = Static<typeof NewMessageBody>;

const view = (m: OutboundMessage) => ({
  id: m.id,
  channel: m.channel,
  provider: m.provider,
  provider_message_id: m.providerMessageId,
  to: m.toAddress,
  from: m.fromAddress,
  subject: m.subject,
  status: m.status,
  status_at: m.statusAt.toISOString(),
  contact_id: m.contactId,
  campaign_id: m.campaignId,
  metadata: m.metadata,
  sent_at: m.sentAt.toISOString(),
  created_at: m.createdAt.toISOString(),
});

const toInput = (b: NewMessageBody) => ({
  channel: b.channel,
  provider: b.provider,
  to: b.to,
  providerMessageId: b.provider_message_id,
  from: b.from,
  subject: b.subject,
  contactId: b.contact_id,
  campaignId: b.campaign_id,
  dedupeKey: b.dedupe_key,
  metadata: b.metadata,
  sentAt: b.sent_at ? new Date(b.sent_at) : undefined,
});

/** Refuse an address its channel cannot have, naming where it was (see `addressProblem`). */
function checkAddresses(items: { channel: "email" | "sms"; address: string; path: string }[]) {
  const errors = items.flatMap(({ channel, address, path }) => {
    const problem = addressProblem(channel, address);
    return problem ? [{ path, message: problem }] : [];
  });
  if (errors.length > 0) {
    throw new HeraldError(
      "validation_failed",
      errors.map((e) => `${e.path} ${e.message}`).join("; "),
      errors,
    );
  }
}

export function messageRoutes(app: FastifyInstance, db: Db) {
  app.post(
    "/api/v1/messages",
    { schema: { tags: ["messages"], body: NewMessageBody } },
    async (request, reply) => {
      const body = request.body as NewMessageBody;
      checkAddresses([{ channel: body.channel, address: body.to, path: "/body/to" }]);
      const { message, created } = await withTenant(db, request.tenantId, (tx) =>
        registerMessage(tx, request.tenantId, toInput(body)),
      );
      return reply.status(created ? 201 : 200).send(view(message));
    },
  );

  app.post(
    "/api/v1/messages/batch",
    {
      schema: {
        tags: ["messages"],
        body: Type.Object(
          { messages: Type.Array(NewMessageBody, { minItems: 1, maxItems: 1000 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { messages } = request.body as { messages: NewMessageBody[] };
      checkAddresses(
        messages.map((m, i) => ({ channel: m.channel, address: m.to, path: `/body/messages/${i}/to` })),
      );
      const results = await withTenant(db, request.tenantId, (tx) =>
        registerMessages(tx, request.tenantId, messages.map(toInput)),
      );
      return reply.status(201).send({ messages: results.map(view) });
    },
  );

  app.get(
    "/api/v1/messages/:id",
    { schema: { tags: ["messages"], params: IdParams, response: problemResponses } },
    async (request) => {
      const { id } = request.params as { id: string };
      const message = await withTenant(db, request.tenantId, (tx) => getMessage(tx, request.tenantId, id));
      if (!message) throw notFound("Message");
      return view(message);
    },
  );

  app.get(
    "/api/v1/messages/:id/events",
    { schema: { tags: ["messages"], params: IdParams } },
    async (request) => {
      const { id } = request.params as { id: string };
      return withTenant(db, request.tenantId, async (tx) => {
        if (!(await getMessage(tx, request.tenantId, id))) throw notFound("Message");
        return { events: await eventsOfMessage(tx, request.tenantId, id) };
      });
    },
  );

  app.get(
    "/api/v1/messages",
    {
      schema: {
        tags: ["messages"],
        querystring: Type.Object(
          {
            ...ListQuery,
            status: Type.Optional(literals(messageStatuses)),
            contact_id: Type.Optional(Text(200)),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query as {
        limit?: number;
        cursor?: string;
        status?: OutboundMessage["status"];
        contact_id?: string;
      };
      const page = await withTenant(db, request.tenantId, (tx) =>
        listMessages(
          tx,
          request.tenantId,
          { status: q.status, contactId: q.contact_id },
          q.limit ?? 50,
          q.cursor,
        ),
      );
      return { messages: page.items.map(view), next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/message-events",
    {
      schema: {
        tags: ["messages"],
        querystring: Type.Object(
          {
            ...ListQuery,
            type: Type.Optional(Text(50)),
            message_id: Type.Optional(Uuid),
            since: Type.Optional(Type.String({ format: "date-time" })),
            until: Type.Optional(Type.String({ format: "date-time" })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query as {
        limit?: number;
        cursor?: string;
        type?: string;
        message_id?: string;
        since?: string;
        until?: string;
      };
      const since = q.since ? new Date(q.since) : undefined;
      const until = q.until ? new Date(q.until) : undefined;
      if (since && until && since > until) {
        throw new HeraldError("validation_failed", "since must not be after until", [
          { path: "/querystring/until", message: "must not be before since" },
        ]);
      }
      const page = await withTenant(db, request.tenantId, (tx) =>
        listMessageEvents(
          tx,
          request.tenantId,
          { type: q.type, messageId: q.message_id, since, until },
          q.limit ?? 50,
          q.cursor,
        ),
      );
      return { events: page.items, next_cursor: page.nextCursor };
    },
  );

  const SuppressionQuery = {
    channel: Type.Optional(literals(channels)),
    address: Type.Optional(Text(320)),
  };
  app.get(
    "/api/v1/suppressions",
    {
      schema: {
        tags: ["suppressions"],
        querystring: Type.Object(
          { ...ListQuery, ...SuppressionQuery, reason: Type.Optional(literals(suppressionReasons)) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query as {
        limit?: number;
        cursor?: string;
        channel?: "email" | "sms";
        address?: string;
        reason?: (typeof suppressionReasons)[number];
      };
      const page = await withTenant(db, request.tenantId, (tx) =>
        listSuppressions(
          tx,
          request.tenantId,
          { channel: q.channel, address: q.address, reason: q.reason },
          q.limit ?? 50,
          q.cursor,
        ),
      );
      return {
        suppressions: page.items.map((s) => ({
          id: s.id,
          channel: s.channel,
          address: s.address,
          reason: s.reason,
          group_id: s.groupId,
          source_event_id: s.sourceEventId,
          created_at: s.createdAt.toISOString(),
        })),
        next_cursor: page.nextCursor,
      };
    },
  );

  app.get(
    "/api/v1/suppressions/check",
    {
      schema: {
        tags: ["suppressions"],
        querystring: Type.Object(
          { channel: literals(channels), address: Text(320) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query as { channel: "email" | "sms"; address: string };
      checkAddresses([{ channel: q.channel, address: q.address, path: "/querystring/address" }]);
      return withTenant(db, request.tenantId, (tx) =>
        checkSuppression(tx, request.tenantId, q.channel, q.address),
      );
    },
  );

  app.post(
    "/api/v1/suppressions",
    {
      schema: {
        tags: ["suppressions"],
        body: Type.Object(
          { channel: literals(channels), address: Text(320), reason: Type.Literal("manual") },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const body = request.body as { channel: "email" | "sms"; address: string };
      checkAddresses([{ channel: body.channel, address: body.address, path: "/body/address" }]);
      const row = await withTenant(db, request.tenantId, (tx) =>
        addManualSuppression(tx, request.tenantId, body.channel, body.address),
      );
      return reply.status(201).send({
        id: row.id,
        channel: row.channel,
        address: row.address,
        reason: row.reason,
        group_id: row.groupId,
        source_event_id: row.sourceEventId,
        created_at: row.createdAt.toISOString(),
      });
    },
  );

  app.delete(
    "/api/v1/suppressions/:id",
    { schema: { tags: ["suppressions"], params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await withTenant(db, request.tenantId, (tx) => deleteSuppression(tx, request.tenantId, id))))
        throw notFound("Suppression");
      return reply.status(204).send();
    },
  );
}
