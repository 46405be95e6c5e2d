-- Reverse of 0001: drop every table of the schema (partitions go with their parents), then the enum.
DROP TABLE IF EXISTS "webhook_sources" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "tenants" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "api_keys" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "send_rate_limits" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "email_validation_results" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "email_sender_identities" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "webhook_deliveries" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "outbound_messages" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "message_events" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "message_event_keys" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "inbound_messages" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "inbound_events" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "conversations" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "contact_channels" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "communication_suppressions" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "scheduled_actions" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "contact_campaigns" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "campaign_transitions" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "campaign_plan_versions" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "subscriptions" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "outbox" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "events" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "event_keys" CASCADE;
--> statement-breakpoint
DROP TABLE IF EXISTS "dead_letters" CASCADE;
--> statement-breakpoint
DROP TYPE IF EXISTS "public"."event_source";
