import type { Executor } from "../db/client.js";
import { parseDbTimestamp } from "../db/timestamps.js";
import { normalizeEvent, parseBatch } from "../providers/sendgrid.js";
import type { QueueRow } from "../queue/row.js";
import { advanceStatuses, applySuppressions, stopCampaigns } from "./effects.js";
import { type IngestEvent, type StoredMessageEvent, storeMessageEvents } from "./store.js";

export interface ProcessOutcome {
  /** Events found in the deliveries. */
  events: number;
  /** Of those, stored now (the rest were repeats). */
  stored: StoredMessageEvent[];
}

const asBuffer = (body: unknown) => (Buffer.isBuffer(body) ? body : Buffer.from(body as Uint8Array));

/** The canonical events of a batch of archived deliveries (rows of `webhook_deliveries`). */
export function eventsOfDeliveries(deliveries: QueueRow[]): IngestEvent[] {
  return deliveries.flatMap((d) => {
    const parsed = parseBatch(asBuffer(d.body));
    if (!parsed.ok) return []; // archived as rejected at the door; nothing to process
    const receivedAt = parseDbTimestamp(d.received_at);
    const fallback = Number.isNaN(receivedAt.getTime()) ? new Date() : receivedAt;
    // Fields added to each fresh object rather than spread into a copy: this runs for every event.
    return parsed.events.map((raw, item) =>
      Object.assign(normalizeEvent(raw, fallback), {
        tenantId: d.tenant_id as string,
        provider: d.provider as string,
        deliveryId: d.id,
        item,
      }),
    );
  });
}

/**
 * Process deliveries inside the caller's transaction: store their events once (and append them to the event
 * log), then apply what the new ones mean — status, suppressions, campaigns. Running it again over the same
 * deliveries stores nothing new and so changes nothing.
 */
export async function processDeliveries(executor: Executor, deliveries: QueueRow[]): Promise<ProcessOutcome> {
  const events = eventsOfDeliveries(deliveries);
  const stored = await storeMessageEvents(executor, events);
  if (stored.length > 0) {
    await advanceStatuses(executor, stored);
    await applySuppressions(executor, stored);
    await stopCampaigns(executor, stored);
  }
  return { events: events.length, stored };
}
