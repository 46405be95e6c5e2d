DROP INDEX "message_events_provider_event_idx";--> statement-breakpoint
DROP INDEX "message_events_outbound_message_idx";--> statement-breakpoint
CREATE INDEX "message_events_resubscribe_idx" ON "message_events" USING btree ("tenant_id","recipient","group_id","event_at") WHERE "message_events"."type" = 'group_resubscribe';--> statement-breakpoint
CREATE INDEX "message_events_outbound_message_idx" ON "message_events" USING btree ("outbound_message_id") WHERE "message_events"."outbound_message_id" is not null;