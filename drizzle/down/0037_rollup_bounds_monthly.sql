-- Undo 0037: the tenant-delete trigger as 0020 left it, no monthly rollups, no hour bounds.
CREATE OR REPLACE FUNCTION herald_delete_tenant_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM events WHERE tenant_id = OLD.id;
  DELETE FROM message_events WHERE tenant_id = OLD.id;
  DELETE FROM message_event_keys WHERE tenant_id = OLD.id;
  DELETE FROM webhook_deliveries WHERE tenant_id = OLD.id;
  DELETE FROM communication_suppressions WHERE tenant_id = OLD.id;
  DELETE FROM event_rollups WHERE tenant_id = OLD.id;
  DELETE FROM event_rollups_daily WHERE tenant_id = OLD.id;
  RETURN OLD;
END $$;
--> statement-breakpoint
DROP TABLE IF EXISTS "event_rollups_monthly";
--> statement-breakpoint
ALTER TABLE "event_rollups" DROP COLUMN IF EXISTS "first_at";
--> statement-breakpoint
ALTER TABLE "event_rollups" DROP COLUMN IF EXISTS "last_at";
