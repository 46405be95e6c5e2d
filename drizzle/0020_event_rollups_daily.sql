CREATE TABLE "event_rollups_daily" (
	"tenant_id" uuid NOT NULL,
	"day" timestamp with time zone NOT NULL,
	"event_type" text NOT NULL,
	"source" "event_source" NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "event_rollups_daily_pkey" PRIMARY KEY("tenant_id","day","event_type","source")
);
--> statement-breakpoint
-- Hand-added: row-level security like every tenant-owned table (0002).
ALTER TABLE "event_rollups_daily" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "event_rollups_daily" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON "event_rollups_daily" USING ("tenant_id" = herald_current_tenant()) WITH CHECK ("tenant_id" = herald_current_tenant());
--> statement-breakpoint
-- Hand-added: the daily counts of what the hourly rollups hold, with the checkpoint's row locked so no
-- projection step moves it meanwhile (a step from then on counts both; 0019 and 0020 ship together, so no
-- projector that knows only the hourly rollups runs against this schema).
SELECT 1 FROM "event_rollup_checkpoint" FOR UPDATE;
--> statement-breakpoint
INSERT INTO "event_rollups_daily" ("tenant_id", "day", "event_type", "source", "count")
SELECT "tenant_id", date_trunc('day', "hour", 'UTC'), "event_type", "source", sum("count")
FROM "event_rollups" GROUP BY 1, 2, 3, 4;
--> statement-breakpoint
-- Hand-added: the tenant-delete trigger (0019) also removes the tenant's daily rollups.
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
