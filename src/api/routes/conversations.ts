import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { channels } from "../../domain/vocabularies.js";
import { notFound } from "../../errors.js";
import {
  type ConversationMessage,
  type ConversationView,
  conversationMessages,
  getConversation,
  listConversations,
  participantKey,
} from "../../inbound/conversations.js";
import { checkAddresses } from "../addresses.js";
import { ListQuery, pageOf } from "../paging.js";
import { IdParams, literals, Nullable, problemResponses, Text } from "../schemas.js";

const ConversationSchema = Type.Object({
  id: Type.String(),
  channel: Type.String(),
  participants: Type.Array(Type.String()),
  last_activity_at: Type.String(),
  message_count: Type.Integer(),
  last_message_preview: Nullable(Type.String()),
});

const MessageSchema = Type.Object({
  id: Type.String(),
  direction: literals(["inbound", "outbound"] as const),
  from: Nullable(Type.String()),
  to: Type.String(),
  body: Nullable(Type.String()),
  timestamp: Type.String(),
  thread_reason: Nullable(Type.String()),
});

const view = (c: ConversationView) => ({
  id: c.id,
  channel: c.channel,
  participants: c.participants,
  last_activity_at: c.lastActivityAt,
  message_count: c.messageCount,
  last_message_preview: c.lastMessagePreview,
});

const messageView = (m: ConversationMessage) => ({
  id: m.id,
  direction: m.direction,
  from: m.from,
  to: m.to,
  body: m.body,
  timestamp: m.timestamp,
  thread_reason: m.threadReason,
});

/** Conversations: inbound and outbound messages threaded by tenant, channel and the outside party. */
export function conversationRoutes(scope: FastifyInstance) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    "/api/v1/conversations",
    {
      schema: {
        tags: ["conversations"],
        querystring: Type.Object(
          {
            ...ListQuery,
            channel: Type.Optional(literals(channels)),
            participant: Type.Optional(Text(320)),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ items: Type.Array(ConversationSchema), next_cursor: Nullable(Type.String()) }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { limit, cursor } = pageOf(q);
      const filter = { channel: q.channel, participant: q.participant };
      const participant = participantKey(filter);
      if (participant && q.participant !== undefined) {
        checkAddresses([
          { channel: participant.channel, address: q.participant, path: "/querystring/participant" },
        ]);
      }
      const page = await request.read((db) => listConversations(db, request.tenantId, filter, limit, cursor));
      return { items: page.items.map(view), next_cursor: page.nextCursor };
    },
  );

  app.get(
    "/api/v1/conversations/:id",
    {
      schema: {
        tags: ["conversations"],
        params: IdParams,
        response: { 200: ConversationSchema, ...problemResponses },
      },
    },
    async (request) => {
      const conversation = await request.read((db) =>
        getConversation(db, request.tenantId, request.params.id),
      );
      if (!conversation) throw notFound("Conversation");
      return view(conversation);
    },
  );

  app.get(
    "/api/v1/conversations/:id/messages",
    {
      schema: {
        tags: ["conversations"],
        params: IdParams,
        querystring: Type.Object(
          {
            page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
            page_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(MessageSchema),
            page: Type.Integer(),
            page_size: Type.Integer(),
            total: Type.Integer(),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const page = request.query.page ?? 1;
      const pageSize = request.query.page_size ?? 50;
      const result = await request.read((db) =>
        conversationMessages(db, request.tenantId, request.params.id, page, pageSize),
      );
      if (!result) throw notFound("Conversation");
      return { items: result.items.map(messageView), page, page_size: pageSize, total: result.total };
    },
  );
}
