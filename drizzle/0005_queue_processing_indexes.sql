DROP INDEX "outbox_event_idx";--> statement-breakpoint
CREATE INDEX "outbox_processing_idx" ON "outbox" USING btree ("locked_until") WHERE "outbox"."status" = 'processing';--> statement-breakpoint
CREATE INDEX "scheduled_actions_processing_idx" ON "scheduled_actions" USING btree ("locked_until") WHERE "scheduled_actions"."status" = 'processing';--> statement-breakpoint
CREATE INDEX "inbound_events_processing_idx" ON "inbound_events" USING btree ("locked_until") WHERE "inbound_events"."status" = 'processing';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_processing_idx" ON "webhook_deliveries" USING btree ("locked_until") WHERE "webhook_deliveries"."status" = 'processing';