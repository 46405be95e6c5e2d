-- The tenant-delete trigger as 0019 left it, then the daily rollups go.
CREATE OR REPLACE FUNCTION herald_delete_tenant_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM events WHERE tenant_id = OLD.id;
  DELETE FROM message_events WHERE tenant_id = OLD.id;
  DELETE FROM message_event_keys WHERE tenant_id = OLD.id;
  DELETE FROM webhook_deliveries WHERE tenant_id = OLD.id;
  DELETE FROM communication_suppressions WHERE tenant_id = OLD.id;
  DELETE FROM event_rollups WHERE tenant_id = OLD.id;
  RETURN OLD;
END $$;
--> statement-breakpoint
DROP TABLE "event_rollups_daily";
