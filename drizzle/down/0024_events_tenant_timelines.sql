DROP INDEX "events_tenant_contact_ts_idx";--> statement-breakpoint
DROP INDEX "events_tenant_session_ts_idx";--> statement-breakpoint
CREATE INDEX "events_contact_ts_idx" ON "events" USING btree ("contact_id","ts" DESC NULLS LAST) WHERE "events"."contact_id" is not null;--> statement-breakpoint
CREATE INDEX "events_session_ts_idx" ON "events" USING btree ("session_id","ts" DESC NULLS LAST) WHERE "events"."session_id" is not null;
