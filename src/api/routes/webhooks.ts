import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { type Static, Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import type { Db } from "../../db/client.js";
import type { WebhookSource } from "../../db/schema/index.js";
import { isUuid } from "../../domain/uuid.js";
import { notFound } from "../../errors.js";
import type { InboundMetrics } from "../../inbound/metrics.js";
import { inboundWakeGatherMs, receiveInbound, twilioInboundInput } from "../../inbound/receive.js";
import type { IngestMetrics } from "../../ingest/metrics.js";
import { type ReceiveOptions, receiveDelivery } from "../../ingest/receive.js";
import { providerFor } from "../../providers/registry.js";
import { inboundEventsQueue, webhookDeliveriesQueue } from "../../queue/definitions.js";
import { QueueWakeups } from "../../queue/wakeups.js";
import { findSourceForWebhook } from "../../tenancy/sources.js";
import type { Foreground } from "../foreground.js";
import { problemOf } from "../problem.js";
import { type PublicUrlOptions, publicUrlOf } from "../publicUrl.js";

/** Any strings: an unknown provider or a malformed source id is a 404, as for any other unknown path. */
const WebhookParams = Type.Object({ provider: Type.String(), sourceId: Type.String() });

const sourceCacheMs = 5000;
const maxCachedSources = 10_000;

/**
 * Provider webhooks, at `/api/v1/webhooks/{provider}/{sourceId}` for each provider of the registry
 * (providers/registry.ts); any other provider is 404. The body is kept as raw bytes (signatures are over the exact bytes; any body parser
 * would re-serialize), whatever its content type. Sources are cached for a few seconds, so the request path
 * is one insert. With a `foreground`, every webhook request counts in it from its first byte to its end, so
 * the processors of this process give way to the door.
 */
export function webhookRoutes(
  app: FastifyInstance,
  systemDb: Db,
  metrics: IngestMetrics,
  {
    foreground,
    publicUrl,
    trustProxy,
    inboundMetrics,
    ...receiveOptions
  }: { foreground?: Foreground | undefined; inboundMetrics?: InboundMetrics | undefined } & PublicUrlOptions &
    Omit<ReceiveOptions, "divert"> = {},
) {
  const wakeups = new QueueWakeups(systemDb, webhookDeliveriesQueue, (error) =>
    app.log.warn({ err: error }, "could not wake the webhook processors; they will poll"),
  );
  const inboundWakeups = new QueueWakeups(
    systemDb,
    inboundEventsQueue,
    (error) => app.log.warn({ err: error }, "could not wake the inbound workers; they will poll"),
    inboundWakeGatherMs,
  );
  // An inbound SMS (a Twilio request is one raw event) is an inbound message, kept once by its MessageSid in
  // the inbound queue; status callbacks go on to the delivery archive.
  const divert: ReceiveOptions["divert"] = async (source, events) => {
    const input = events.length === 1 ? twilioInboundInput(events[0]!) : undefined;
    if (!input) return undefined;
    const kept = await receiveInbound(systemDb, source.tenantId, input, receiveOptions);
    if (!kept) throw new Error("inbound intake refused without a condition");
    inboundMetrics?.received.inc({ channel: input.channel, duplicate: String(kept.duplicate) });
    if (!kept.duplicate) inboundWakeups.wake();
    return { deliveryId: kept.eventId, events: 1 };
  };
  // Only sources that exist are cached (random ids from the internet must not grow the map), and the map is
  // swept of expired entries as it grows.
  const sources = new Map<string, { at: number; source: WebhookSource }>();
  const findSource = async (provider: string, id: string) => {
    const key = `${provider}/${id}`;
    const now = Date.now();
    const cached = sources.get(key);
    if (cached && now - cached.at < sourceCacheMs) return cached.source;
    const source = await findSourceForWebhook(systemDb, provider, id);
    if (!source) {
      sources.delete(key);
      return undefined;
    }
    if (sources.size >= maxCachedSources) {
      for (const [k, v] of sources) if (now - v.at >= sourceCacheMs) sources.delete(k);
      if (sources.size >= maxCachedSources) sources.clear();
    }
    sources.set(key, { at: now, source });
    return source;
  };

  app.register(async (untyped) => {
    const scope = untyped.withTypeProvider<TypeBoxTypeProvider>();
    if (foreground) {
      // Before the body is read; 'close' ends every response: sent, failed or cut off by the client.
      scope.addHook("onRequest", async (_request, reply) => {
        reply.raw.once("close", foreground.enter());
      });
    }
    // Every refusal counts, by its problem code: also those made before the handler (413). Server faults
    // (503, 500) are not refusals of the delivery: the sender retries them.
    // Only under a registered provider's name: the path segment is anyone's to choose.
    scope.addHook<{ Params: Partial<Static<typeof WebhookParams>> }>(
      "onError",
      async (request, _reply, error) => {
        const problem = problemOf(error);
        const provider = providerFor(request.params?.provider ?? "");
        if (provider && problem.status < 500)
          metrics.rejected.inc({ provider: provider.name, reason: problem.code });
      },
    );
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

    scope.post(
      "/api/v1/webhooks/:provider/:sourceId",
      { schema: { tags: ["webhooks"], hide: false, params: WebhookParams } },
      async (request, reply) => {
        const { params } = request;
        const provider = providerFor(params.provider);
        const source =
          provider && isUuid(params.sourceId)
            ? await findSource(provider.name, params.sourceId.toLowerCase())
            : undefined;
        if (!source) throw notFound("Webhook source");
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const received = await receiveDelivery(
          systemDb,
          source,
          {
            headers: request.headers,
            body,
            remoteIp: request.ip,
            publicUrl: publicUrlOf(request, { publicUrl, trustProxy }),
          },
          { ...receiveOptions, divert: provider!.name === "twilio" ? divert : undefined },
        );
        if (received.control) {
          // Nothing archived (SNS's subscription confirmations): the operator learns of it here.
          request.log.info(
            { provider: provider!.name, source: source.id, control: received.control },
            "control message",
          );
          return reply.status(200).send({ control: received.control.kind, note: received.control.note });
        }
        metrics.received.inc({ provider: provider!.name });
        if (!received.diverted) wakeups.wake();
        const answer = provider!.answer(received, received.raw);
        return "json" in answer
          ? reply.status(answer.status).send(answer.json)
          : reply.status(answer.status).type(answer.contentType).send(answer.text);
      },
    );
  });
}
