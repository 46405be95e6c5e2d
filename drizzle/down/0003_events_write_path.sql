DROP TRIGGER IF EXISTS tenants_delete_events ON tenants;
--> statement-breakpoint
DROP FUNCTION IF EXISTS herald_delete_tenant_events();
--> statement-breakpoint
DROP INDEX IF EXISTS "events_contact_ts_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "events_session_ts_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "events_message_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "events_correlation_idx";
--> statement-breakpoint
CREATE INDEX "events_contact_ts_idx" ON "events" USING btree ("contact_id","ts" DESC NULLS LAST);
--> statement-breakpoint
CREATE INDEX "events_session_ts_idx" ON "events" USING btree ("session_id","ts" DESC NULLS LAST);
--> statement-breakpoint
CREATE INDEX "events_message_idx" ON "events" USING btree ("message_id");
--> statement-breakpoint
CREATE INDEX "events_correlation_idx" ON "events" USING btree ("tenant_id","correlation_id");
--> statement-breakpoint
DELETE FROM events e WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id);
--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;
