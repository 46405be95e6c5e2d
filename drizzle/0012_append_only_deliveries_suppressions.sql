ALTER TABLE "communication_suppressions" DROP CONSTRAINT "communication_suppressions_tenant_id_tenants_id_fk";
--> statement-breakpoint
ALTER TABLE "webhook_deliveries" DROP CONSTRAINT "webhook_deliveries_tenant_id_tenants_id_fk";
--> statement-breakpoint
ALTER TABLE "webhook_deliveries" DROP CONSTRAINT "webhook_deliveries_source_id_webhook_sources_id_fk";
--> statement-breakpoint
-- Hand-added: the tenant-delete trigger (0003, 0007) now also removes the tenant's webhook deliveries and
-- suppressions, whose foreign keys were dropped above.
CREATE OR REPLACE FUNCTION herald_delete_tenant_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM events WHERE tenant_id = OLD.id;
  DELETE FROM message_events WHERE tenant_id = OLD.id;
  DELETE FROM message_event_keys WHERE tenant_id = OLD.id;
  DELETE FROM webhook_deliveries WHERE tenant_id = OLD.id;
  DELETE FROM communication_suppressions WHERE tenant_id = OLD.id;
  RETURN OLD;
END $$;
