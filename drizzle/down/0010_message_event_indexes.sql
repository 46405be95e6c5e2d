DROP INDEX "message_events_resubscribe_idx";
--> statement-breakpoint
DROP INDEX "message_events_outbound_message_idx";
--> statement-breakpoint
CREATE INDEX "message_events_outbound_message_idx" ON "message_events" USING btree ("outbound_message_id");
--> statement-breakpoint
CREATE INDEX "message_events_provider_event_idx" ON "message_events" USING btree ("provider","provider_event_id");
