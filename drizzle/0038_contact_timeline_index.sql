-- Hand-written: a contact's timeline read from one index (an index-only scan) instead of one heap page per
-- event. A contact's events are spread over the month's heap (it is in time order), so a timeline of 100
-- events meant ~100 random page reads; the index holds them side by side. Drizzle cannot declare INCLUDE
-- columns: the schema (src/db/schema/bus.ts) names these indexes in a comment.
--
-- A btree entry holds at most 2,704 bytes, so only events whose variable-length columns fit in 2,000 are
-- covered; the rest (and `message.*` events whose payload is made from their message event) are found
-- through a small index of keys. Each contact event is in exactly one of the two, by the same function of
-- the row's values: reads take both (`src/events/contactIndexes.ts`), and counts too, so the index of a
-- contact's keys alone (0024) goes. The function is deterministic: each
-- jsonb is measured as the text it prints, parsed again, so the size does not depend on how the row is
-- stored (compressed, short header) when an index is built or rebuilt.
CREATE OR REPLACE FUNCTION herald_event_entry_bytes(
  payload jsonb, metadata jsonb, event_type text, contact_id text, session_id text, event_key text,
  correlation_id text, causation_id text
) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(pg_column_size(payload::text::jsonb), 0) + coalesce(pg_column_size(metadata::text::jsonb), 0)
    + coalesce(octet_length(event_type), 0) + coalesce(octet_length(contact_id), 0)
    + coalesce(octet_length(session_id), 0) + coalesce(octet_length(event_key), 0)
    + coalesce(octet_length(correlation_id), 0) + coalesce(octet_length(causation_id), 0)
$$;
--> statement-breakpoint
CREATE INDEX "events_contact_timeline_idx" ON "events" USING btree ("tenant_id", "contact_id", "ts" DESC NULLS LAST, "id" DESC)
  INCLUDE ("event_type", "source", "session_id", "message_id", "payload", "metadata", "event_key", "correlation_id",
    "causation_id", "schema_version", "sequence_number", "created_at", "transaction_id", "position")
  WHERE "contact_id" IS NOT NULL AND "payload" IS NOT NULL
    AND herald_event_entry_bytes("payload", "metadata", "event_type", "contact_id", "session_id", "event_key", "correlation_id", "causation_id") <= 2000;
--> statement-breakpoint
CREATE INDEX "events_contact_uncovered_idx" ON "events" USING btree ("tenant_id", "contact_id", "ts" DESC NULLS LAST, "id" DESC)
  WHERE "contact_id" IS NOT NULL AND ("payload" IS NULL
    OR herald_event_entry_bytes("payload", "metadata", "event_type", "contact_id", "session_id", "event_key", "correlation_id", "causation_id") > 2000);
--> statement-breakpoint
DROP INDEX "events_tenant_contact_ts_idx";
