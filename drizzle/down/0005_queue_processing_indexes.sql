DROP INDEX IF EXISTS "outbox_processing_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "scheduled_actions_processing_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "inbound_events_processing_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "webhook_deliveries_processing_idx";
--> statement-breakpoint
CREATE INDEX "outbox_event_idx" ON "outbox" USING btree ("event_id");
