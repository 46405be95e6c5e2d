import type { Executor } from "../db/client.js";
import { parseDbTimestamp } from "../db/timestamps.js";
import { jsonArrayItems } from "../domain/jsonArrayItems.js";
import { stopCampaigns } from "../messages/campaigns.js";
import { advanceStatuses } from "../messages/status.js";
import { type IngestEvent, type StoredMessageEvent, storeMessageEvents } from "../messages/storeEvents.js";
import { applySuppressions } from "../messages/suppressions.js";
import { providerFor } from "../providers/registry.js";
import { rejectDeliveries } from "../queue/rejectDeliveries.js";
import type { QueueRow } from "../queue/row.js";

export interface ProcessOutcome {
  /** Events found in the deliveries. */
  events: number;
  /** Of those, stored now (the rest were repeats). */
  stored: StoredMessageEvent[];
}

const asBuffer = (body: unknown) => (Buffer.isBuffer(body) ? body : Buffer.from(body as Uint8Array));
/** A delivery's archived headers (jsonb: an object, or its text). */
const headersOf = (headers: unknown): Record<string, string> =>
  (typeof headers === "string" ? JSON.parse(headers) : (headers ?? {})) as Record<string, string>;

/**
 * The canonical events of a batch of archived deliveries (rows of `webhook_deliveries`), and the deliveries
 * whose bodies no longer pass the door's checks (accepted by an earlier version; they hold no events).
 */
function eventsOfDeliveries(deliveries: QueueRow[]): {
  events: IngestEvent[];
  unreadable: { id: number; reason: string }[];
} {
  const unreadable: { id: number; reason: string }[] = [];
  const events = deliveries.flatMap((d) => {
    const provider = providerFor(d.provider as string);
    // Archived by a Herald that took this provider's webhooks: failed (so retried, then a dead letter to
    // reprocess with a Herald that has its module), never marked as unreadable.
    if (!provider) throw new Error(`No module for provider ${String(d.provider)} (delivery ${d.id})`);
    const body = asBuffer(d.body);
    const parsed = provider.parse(body, headersOf(d.headers));
    if (!parsed.ok) {
      unreadable.push({ id: d.id, reason: parsed.detail });
      return [];
    }
    const receivedAt = parseDbTimestamp(d.received_at);
    const fallback = Number.isNaN(receivedAt.getTime()) ? new Date() : receivedAt;
    // Fields added to each fresh object rather than spread into a copy: this runs for every event. Where the
    // body is the array of events, each event's bytes in it: the payload is then read from there.
    const ranges = provider.eventsAreBodyItems ? jsonArrayItems(body) : undefined;
    const inBody = ranges?.length === parsed.events.length ? ranges : undefined;
    return parsed.events.map((raw, item) =>
      Object.assign(provider.normalize(raw, fallback), {
        tenantId: d.tenant_id as string,
        provider: d.provider as string,
        deliveryId: d.id,
        raw: inBody?.[item] ?? null,
      }),
    );
  });
  return { events, unreadable };
}

/**
 * Process deliveries inside the caller's transaction: store their events once (and append them to the event
 * log), then apply what the new ones mean — status, suppressions, campaigns. Running it again over the same
 * deliveries stores nothing new and so changes nothing.
 */
export async function processDeliveries(executor: Executor, deliveries: QueueRow[]): Promise<ProcessOutcome> {
  const { events, unreadable } = eventsOfDeliveries(deliveries);
  await rejectDeliveries(executor, unreadable);
  const stored = await storeMessageEvents(executor, events);
  if (stored.length > 0) {
    await advanceStatuses(executor, stored);
    await applySuppressions(executor, stored);
    await stopCampaigns(executor, stored);
  }
  return { events: events.length, stored };
}
