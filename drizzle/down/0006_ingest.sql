DROP FUNCTION IF EXISTS herald_status_rank(text);
--> statement-breakpoint
DROP INDEX IF EXISTS "message_events_unlinked_idx";
--> statement-breakpoint
ALTER TABLE "communication_suppressions" DROP COLUMN IF EXISTS "source_event_at";
--> statement-breakpoint
CREATE INDEX "message_events_unlinked_idx" ON "message_events" USING btree ("tenant_id","provider_message_id") WHERE "message_events"."outbound_message_id" is null;
