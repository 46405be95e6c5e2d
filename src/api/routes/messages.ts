import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { OutboundMessage } from "../../db/schema/index.js";
import { channels, messageStatuses } from "../../domain/vocabularies.js";
import { notFound } from "../../errors.js";
import { getMessage, listMessages } from "../../messages/outbound.js";
import {
  needsTransaction,
  registerAlone,
  registerMessage,
  registerMessages,
} from "../../messages/register.js";
import { checkAddresses } from "../addresses.js";
import { ListQuery, pageOf } from "../paging.js";
import { DateTime, IdParams, literals, problemResponses, Text, Uuid } from "../schemas.js";

const NewMessageBody = Type.Object(
  {
    channel: literals(channels),
    provider: Text(50),
    to: Text(320),
    provider_message_id: Type.Optional(Text(500)),
    from: Type.Optional(Text(320)),
    subject: Type.Optional(Type.String({ maxLength: 2000 })),
    email_message_id: Type.Optional(Text(1000)),
    contact_id: Type.Optional(Text(200)),
    campaign_id: Type.Optional(Uuid),
    dedupe_key: Type.Optional(Text(200)),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    sent_at: Type.Optional(DateTime),
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
  // As stored: without angle brackets (replies naming it thread to its recipient's conversation).
  email_message_id: m.emailMessageId,
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
  emailMessageId: b.email_message_id,
  contactId: b.contact_id,
  campaignId: b.campaign_id,
  dedupeKey: b.dedupe_key,
  metadata: b.metadata,
  sentAt: b.sent_at ? new Date(b.sent_at) : undefined,
});

/** Outbound messages: registered by the product as it sends them, then advanced by provider events. */
export function messageRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    "/api/v1/messages",
    { schema: { tags: ["messages"], body: NewMessageBody } },
    async (request, reply) => {
      const { body } = request;
      checkAddresses([{ channel: body.channel, address: body.to, path: "/body/to" }]);
      const input = toInput(body);
      // One statement, the key's liveness checked in it; in a transaction when events wait for the message.
      const alone = await request.inOneStatement((db, keyLive) =>
        registerAlone(db, request.tenantId, input, keyLive),
      );
      const { message, created } =
        alone === needsTransaction
          ? await request.inTenant((tx) => registerMessage(tx, request.tenantId, input))
          : alone;
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
      const { messages } = request.body;
      checkAddresses(
        messages.map((m, i) => ({ channel: m.channel, address: m.to, path: `/body/messages/${i}/to` })),
      );
      const results = await request.inTenant((tx) =>
        registerMessages(tx, request.tenantId, messages.map(toInput)),
      );
      return reply.status(201).send({ messages: results.map(view) });
    },
  );

  app.get(
    "/api/v1/messages/:id",
    { schema: { tags: ["messages"], params: IdParams, response: problemResponses } },
    async (request) => {
      const message = await request.inTenant((tx) => getMessage(tx, request.tenantId, request.params.id));
      if (!message) throw notFound("Message");
      return view(message);
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
            to: Type.Optional(Text(320)),
            channel: Type.Optional(literals(channels)),
            campaign_id: Type.Optional(Uuid),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const q = request.query;
      const { limit, cursor } = pageOf(q);
      const page = await request.inTenant((tx) =>
        listMessages(
          tx,
          request.tenantId,
          {
            status: q.status,
            contactId: q.contact_id,
            to: q.to,
            channel: q.channel,
            campaignId: q.campaign_id,
          },
          limit,
          cursor,
        ),
      );
      return { messages: page.items.map(view), next_cursor: page.nextCursor };
    },
  );
}
