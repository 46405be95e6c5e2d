import { sql } from "drizzle-orm";
import { type Db, query } from "../db/client.js";
import { preparePartitions } from "../db/partitions.js";
import type { WebhookSource } from "../db/schema/index.js";
import { HeraldError, notFound } from "../errors.js";
import { providerFor } from "../providers/registry.js";
import type { ControlMessage, IncomingRequest, ReceivedDelivery } from "../providers/types.js";
import { enqueueDelivery } from "../queue/enqueueDelivery.js";
import { firstUse } from "./replayTokens.js";
import { snsCertificates, visitSubscribeUrl } from "./snsCertificates.js";

export type { IncomingRequest, ReceivedDelivery } from "../providers/types.js";

/** Request headers worth keeping with the raw body (for audits and reprocessing), besides the provider's own. */
const keptHeaders = ["content-type", "user-agent", "x-forwarded-for"];

export interface ReceiveOptions {
  /** Processing attempts before the delivery becomes a dead letter (HERALD_MAX_ATTEMPTS). @defaultValue 5 */
  maxAttempts?: number;
  /**
   * Given an authenticated delivery's raw events first: when it keeps them elsewhere itself (Twilio's inbound
   * SMS go to the inbound queue, not to the delivery archive), it returns what it kept, and nothing is
   * archived. Resolves only once that is committed.
   */
  divert?: (
    source: WebhookSource,
    events: readonly Record<string, unknown>[],
  ) => Promise<ReceivedDelivery | undefined>;
  /**
   * SNS signing certificates by URL, for the SES module (`snsCertificates`: fetched over HTTPS and cached, or
   * `HERALD_SNS_CERTIFICATE_FILE`). @defaultValue a process-wide fetching cache
   */
  snsCertificate?: (url: string) => Promise<string>;
  /** How a control message's URL is visited (SNS's `SubscribeURL`). @defaultValue an HTTPS GET */
  visit?: (url: string) => Promise<void>;
}

/** Certificates of the callers that give no source of their own: one cache for the process. */
let sharedCertificates: ((url: string) => Promise<string>) | undefined;
const sharedSnsCertificates = () => {
  sharedCertificates ??= snsCertificates();
  return sharedCertificates;
};

/** A kept delivery, and its raw events (for the provider's answer). */
export interface Received extends ReceivedDelivery {
  raw: readonly Record<string, unknown>[];
  /** Whether `divert` kept it. */
  diverted: boolean;
  /** A control message (nothing archived: `deliveryId` 0), handled. */
  control?: ControlMessage;
}

const header = (headers: IncomingRequest["headers"], name: string) => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Accept one delivery to a source, through its provider's module (providers/registry.ts): authenticate it on
 * the exact bytes (nothing is stored when that fails), make sure its events' months have partitions, then
 * archive the raw body in `webhook_deliveries` — queued for processing, or marked rejected when the module
 * refuses the body (SendGrid's: not an array of objects) — in one insert. Resolves only once
 * that row is committed, so a 200 always means "kept"; the caller then wakes the processors (see
 * `QueueWakeups`). A control message (`ProviderModule.control`: SNS's subscription confirmations) is acted on
 * and returned with `control` set, and nothing is archived.
 */
export async function receiveDelivery(
  db: Db,
  source: WebhookSource,
  request: IncomingRequest,
  options: ReceiveOptions = {},
): Promise<Received> {
  const provider = providerFor(source.provider);
  if (!provider) throw notFound("Webhook source");
  const refused = await provider.authenticate(request, source.verification, {
    now: () => new Date(),
    firstUse: (token, expiresAt) => firstUse(db, source, token, expiresAt),
    certificate: (url) => (options.snsCertificate ?? sharedSnsCertificates())(url),
  });
  if (refused) throw refused;
  // A provider's message about the subscription itself (SNS's confirmations) holds no events: acted on (a
  // failed visit is a 503, which the provider retries), answered, not archived.
  const control = provider.control?.(request.body, source.verification);
  if (control) {
    if (control.visit)
      await (options.visit ?? visitSubscribeUrl)(control.visit).catch((error: Error) => {
        throw new HeraldError("unavailable", `Could not confirm the subscription: ${error.message}`);
      });
    return { deliveryId: 0, events: 0, raw: [], diverted: false, control };
  }
  const parsed = provider.parse(request.body, request.headers);
  if (parsed.ok && options.divert) {
    const diverted = await options.divert(source, parsed.events);
    if (diverted) return { ...diverted, raw: parsed.events, diverted: true };
  }
  if (parsed.ok) {
    // The months its events fall in get their partitions now, each in a short transaction of its own, so the
    // processor's transaction never has to make one (see db/partitions.ts). Nothing to do for known months.
    const receivedAt = new Date();
    await preparePartitions(
      db,
      ["message_events", "events"],
      parsed.events.map((event) => provider.eventTime(event, receivedAt)),
    );
  }
  const headers = Object.fromEntries(
    [...keptHeaders, ...provider.keptHeaders].flatMap((name) => {
      const value = header(request.headers, name);
      return value === undefined ? [] : [[name, value.slice(0, 1000)]];
    }),
  );
  const rejected = parsed.ok ? null : parsed.detail;
  // An accepted body is valid UTF-8 JSON (so it holds no NUL byte): sent as text and turned back into the
  // same bytes by the server, far cheaper than a hex-encoded bytea parameter. Anything else goes as bytes.
  const body = parsed.ok ? sql`convert_to(${parsed.text}::text, 'UTF8')` : sql`${request.body}::bytea`;
  // Only while the source is live: the caller's copy of it may be a few seconds old (a cache), and a deleted
  // source's URL must answer 404 at once, from every process.
  const [row] = await query<{ id: string }>(
    db,
    enqueueDelivery({
      tenantId: source.tenantId,
      sourceId: source.id,
      provider: source.provider,
      headers,
      body,
      remoteIp: request.remoteIp ?? null,
      eventCount: parsed.ok ? parsed.events.length : 0,
      rejected,
      maxAttempts: options.maxAttempts ?? 5,
    }),
    // One of two texts (by the body's kind): prepared, so a delivery is one round trip, not two.
    { prepare: true },
  );
  if (!row) throw notFound("Webhook source");
  if (!parsed.ok)
    throw new HeraldError(parsed.code, `${parsed.detail}; the delivery was archived as rejected`, [
      { path: parsed.path, message: parsed.detail },
    ]);
  return { deliveryId: Number(row!.id), events: parsed.events.length, raw: parsed.events, diverted: false };
}
