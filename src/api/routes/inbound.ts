import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Db } from "../../db/client.js";
import { channels } from "../../domain/vocabularies.js";
import type { InboundMetrics } from "../../inbound/metrics.js";
import { inboundWakeGatherMs, type ReceiveInboundOptions, receiveInbound } from "../../inbound/receive.js";
import { inboundEventsQueue } from "../../queue/definitions.js";
import { QueueWakeups } from "../../queue/wakeups.js";
import { checkAddresses } from "../addresses.js";
import { DateTime, literals, Text } from "../schemas.js";

const InboundBody = Type.Object(
  {
    channel: literals(channels),
    provider: Text(50),
    provider_message_id: Text(500),
    from: Text(320),
    to: Text(320),
    body: Type.String({ maxLength: 100_000 }),
    subject: Type.Optional(Type.String({ maxLength: 2000 })),
    in_reply_to: Type.Optional(Text(1000)),
    references: Type.Optional(Type.Array(Text(1000), { maxItems: 100 })),
    received_at: Type.Optional(DateTime),
  },
  { additionalProperties: false },
);
type InboundBody = Static<typeof InboundBody>;

/**
 * `POST /api/v1/inbound`: an inbound message the product received itself (an email through its own inbound
 * parsing, an SMS from a provider Herald has no module for). Kept once per channel + provider message id,
 * committed before the 202; threaded by the inbound worker.
 */
export function inboundRoutes(
  scope: FastifyInstance,
  { db, metrics, ...options }: { db: Db; metrics: InboundMetrics } & ReceiveInboundOptions,
) {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const wakeups = new QueueWakeups(
    db,
    inboundEventsQueue,
    (error) => app.log.warn({ err: error }, "could not wake the inbound workers; they will poll"),
    inboundWakeGatherMs,
  );

  app.post(
    "/api/v1/inbound",
    { schema: { tags: ["inbound"], body: InboundBody } },
    async (request, reply) => {
      const b: InboundBody = request.body;
      checkAddresses([
        { channel: b.channel, address: b.from, path: "/body/from" },
        { channel: b.channel, address: b.to, path: "/body/to" },
      ]);
      // One statement, the key's liveness checked in it: the intake is one round trip.
      const received = await request.inOneStatement((db, keyLive) =>
        receiveInbound(
          db,
          request.tenantId,
          {
            channel: b.channel,
            provider: b.provider,
            providerMessageId: b.provider_message_id,
            from: b.from,
            to: b.to,
            body: b.body,
            subject: b.subject,
            inReplyTo: b.in_reply_to,
            references: b.references,
            receivedAt: b.received_at ? new Date(b.received_at) : undefined,
          },
          { ...options, onlyIf: keyLive },
        ),
      );
      metrics.received.inc({ channel: b.channel, duplicate: String(received.duplicate) });
      if (!received.duplicate) wakeups.wake();
      return reply.status(202).send({ id: received.id, duplicate: received.duplicate });
    },
  );
}
