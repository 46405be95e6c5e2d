import type { EventSource } from "../domain/vocabularies.js";

/** An event to append to the log. */
export interface NewEvent {
  tenantId: string;
  eventType: string;
  source: EventSource;
  payload?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** When it happened. @defaultValue now */
  timestamp?: Date;
  contactId?: string | null;
  sessionId?: string | null;
  messageId?: string | null;
  /** Idempotency key: the same key (per tenant) returns the stored event instead of a second one. */
  eventKey?: string | null;
  correlationId?: string | null;
  causationId?: string | null;
  /** @defaultValue 1 */
  schemaVersion?: number;
  sequenceNumber?: number | null;
}

/** A stored event as the API and the sinks show it. */
export interface StoredEvent {
  id: string;
  tenant_id: string;
  event_type: string;
  source: EventSource;
  timestamp: string;
  created_at: string;
  contact_id: string | null;
  session_id: string | null;
  message_id: string | null;
  payload: Record<string, unknown>;
  metadata: Record<string, unknown>;
  event_key: string | null;
  correlation_id: string | null;
  causation_id: string | null;
  schema_version: number;
  sequence_number: number | null;
  /** Position in the log, with `transaction_id` the order readers follow. */
  position: number;
  transaction_id: string;
}

export interface WriteResult {
  event: StoredEvent;
  duplicate: boolean;
}

export const eventTypePattern = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;
