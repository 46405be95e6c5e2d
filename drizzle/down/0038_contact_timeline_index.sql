-- Undo 0038: a contact's events through the index of their keys (0024) and the heap again.
CREATE INDEX "events_tenant_contact_ts_idx" ON "events" USING btree ("tenant_id","contact_id","ts" DESC NULLS LAST) WHERE "events"."contact_id" is not null;
--> statement-breakpoint
DROP INDEX IF EXISTS "events_contact_uncovered_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "events_contact_timeline_idx";
--> statement-breakpoint
DROP FUNCTION IF EXISTS herald_event_entry_bytes(jsonb, jsonb, text, text, text, text, text, text);
