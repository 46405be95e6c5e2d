-- Hand-written: a contact's timeline read from one index (an index-only scan) instead of one heap page per
-- event. A contact's events are spread over the month's heap (it is in time order), so a timeline of 100
-- events meant ~100 random page reads; the index holds them side by side. Drizzle cannot declare INCLUDE
-- columns: the schema (src/db/schema/bus.ts) names these indexes in a comment.
--
-- A btree entry holds at most 2,704 bytes, so only events whose variable-length columns are small are
-- covered; the rest (and `message.*` events whose payload is made from their message event) are found
-- through a small index of keys. Each contact event is in exactly one of the two, by the same expression of
-- the row's values: reads take both (`src/events/contactIndexes.ts`), and counts too, so the index of a
-- contact's keys alone (0024) goes. The expression uses built-in immutable functions only (a SQL function
-- here cost ~16 µs per insert, not being inlined): a jsonb's stored form is at most 4 times the text it
-- prints, plus a few bytes (`[0, 0]`: 4 bytes a number for 3 characters; `[[[]]]`: 8 bytes a level for
-- 2), so the bound of 2,200 leaves the entry's fixed columns, headers and padding (under 300 bytes) room.
CREATE INDEX "events_contact_timeline_idx" ON "events" USING btree ("tenant_id", "contact_id", "ts" DESC NULLS LAST, "id" DESC)
  INCLUDE ("event_type", "source", "session_id", "message_id", "payload", "metadata", "event_key", "correlation_id",
    "causation_id", "schema_version", "sequence_number", "created_at", "transaction_id", "position")
  WHERE "contact_id" IS NOT NULL AND "payload" IS NOT NULL
    AND 4 * (octet_length("payload"::text) + octet_length("metadata"::text)) + octet_length("event_type") + octet_length("contact_id") + coalesce(octet_length("session_id"), 0) + coalesce(octet_length("event_key"), 0) + coalesce(octet_length("correlation_id"), 0) + coalesce(octet_length("causation_id"), 0) <= 2200;
--> statement-breakpoint
CREATE INDEX "events_contact_uncovered_idx" ON "events" USING btree ("tenant_id", "contact_id", "ts" DESC NULLS LAST, "id" DESC)
  WHERE "contact_id" IS NOT NULL AND ("payload" IS NULL
    OR 4 * (octet_length("payload"::text) + octet_length("metadata"::text)) + octet_length("event_type") + octet_length("contact_id") + coalesce(octet_length("session_id"), 0) + coalesce(octet_length("event_key"), 0) + coalesce(octet_length("correlation_id"), 0) + coalesce(octet_length("causation_id"), 0) > 2200);
--> statement-breakpoint
DROP INDEX "events_tenant_contact_ts_idx";
