ALTER TABLE "outbox" DROP CONSTRAINT "outbox_tenant_id_tenants_id_fk";
--> statement-breakpoint
ALTER TABLE "message_event_keys" DROP CONSTRAINT "message_event_keys_tenant_id_tenants_id_fk";
--> statement-breakpoint
ALTER TABLE "message_events" DROP CONSTRAINT "message_events_tenant_id_tenants_id_fk";
--> statement-breakpoint
-- Hand-added: the tenant-delete trigger of 0003 now also removes the tenant's message events and their keys
-- (their foreign keys were dropped above; outbox rows still go with their subscriptions).
CREATE OR REPLACE FUNCTION herald_delete_tenant_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM events WHERE tenant_id = OLD.id;
  DELETE FROM message_events WHERE tenant_id = OLD.id;
  DELETE FROM message_event_keys WHERE tenant_id = OLD.id;
  RETURN OLD;
END $$;
