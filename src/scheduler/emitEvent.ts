import type { Tx } from "../db/client.js";
import { type EventSource, eventSources } from "../domain/vocabularies.js";
import type { NewEvent } from "../events/types.js";
import { writeEvents } from "../events/write.js";
import type { ScheduledRun } from "./registry.js";

/**
 * The built-in `emit_event`: each run appends its payload, an event as for `POST /api/v1/events` (checked
 * against that route's schema when the action is created), to the log in the run's transaction, so it reaches
 * subscribers like any other event. Its `event_key` is the payload's, or `scheduled:<action id>`, and for a
 * repeating action followed by `:<slot time>` — one event per slot, even if a slot ran twice.
 */
export async function emitEvents(tx: Tx, runs: readonly ScheduledRun[]): Promise<void> {
  await writeEvents(tx, runs.map(eventOf));
}

const text = (value: unknown): string | null => (typeof value === "string" ? value : null);
const record = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
const isSource = (value: unknown): value is EventSource =>
  typeof value === "string" && (eventSources as readonly string[]).includes(value);

/** The event of a run: the payload's fields (snake_case, as the API takes them). */
export function eventOf(run: ScheduledRun): NewEvent {
  const p = run.payload;
  const eventType = text(p.event_type);
  if (!eventType || !isSource(p.source)) throw new Error("emit_event payload needs event_type and source");
  const key = text(p.event_key) ?? `scheduled:${run.actionId}`;
  const timestamp = text(p.timestamp);
  return {
    tenantId: run.tenantId,
    eventType,
    source: p.source,
    payload: record(p.payload),
    metadata: record(p.metadata),
    timestamp: timestamp ? new Date(timestamp) : undefined,
    contactId: text(p.contact_id),
    sessionId: text(p.session_id),
    messageId: text(p.message_id),
    eventKey: run.repeating ? `${key}:${run.slot.toISOString()}` : key,
    correlationId: text(p.correlation_id),
    causationId: text(p.causation_id),
    sequenceNumber: typeof p.sequence_number === "number" ? p.sequence_number : null,
    schemaVersion: typeof p.schema_version === "number" ? p.schema_version : 1,
  };
}
