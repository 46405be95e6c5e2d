ALTER TABLE "events" DROP CONSTRAINT "events_tenant_id_tenants_id_fk";
--> statement-breakpoint
DROP INDEX "events_contact_ts_idx";--> statement-breakpoint
DROP INDEX "events_session_ts_idx";--> statement-breakpoint
DROP INDEX "events_message_idx";--> statement-breakpoint
DROP INDEX "events_correlation_idx";--> statement-breakpoint
CREATE INDEX "events_contact_ts_idx" ON "events" USING btree ("contact_id","ts" DESC NULLS LAST) WHERE "events"."contact_id" is not null;--> statement-breakpoint
CREATE INDEX "events_session_ts_idx" ON "events" USING btree ("session_id","ts" DESC NULLS LAST) WHERE "events"."session_id" is not null;--> statement-breakpoint
CREATE INDEX "events_message_idx" ON "events" USING btree ("message_id") WHERE "events"."message_id" is not null;--> statement-breakpoint
CREATE INDEX "events_correlation_idx" ON "events" USING btree ("tenant_id","correlation_id") WHERE "events"."correlation_id" is not null;--> statement-breakpoint
-- Hand-added: with no foreign key on events, deleting a tenant removes its events through this trigger.
CREATE OR REPLACE FUNCTION herald_delete_tenant_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM events WHERE tenant_id = OLD.id;
  RETURN OLD;
END $$;
--> statement-breakpoint
CREATE TRIGGER tenants_delete_events AFTER DELETE ON tenants FOR EACH ROW EXECUTE FUNCTION herald_delete_tenant_events();
