CREATE TABLE "event_rollups_monthly" (
	"tenant_id" uuid NOT NULL,
	"month" timestamp with time zone NOT NULL,
	"event_type" text NOT NULL,
	"source" "event_source" NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "event_rollups_monthly_pkey" PRIMARY KEY("tenant_id","month","event_type","source")
);
--> statement-breakpoint
ALTER TABLE "event_rollups" ADD COLUMN "first_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "event_rollups" ADD COLUMN "last_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "event_rollups_monthly_counts_idx" ON "event_rollups_monthly" USING btree ("tenant_id","month","event_type","source","count");--> statement-breakpoint
-- Hand-added: row-level security like every tenant-owned table (0002).
ALTER TABLE "event_rollups_monthly" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "event_rollups_monthly" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON "event_rollups_monthly" USING ("tenant_id" = herald_current_tenant()) WITH CHECK ("tenant_id" = herald_current_tenant());
--> statement-breakpoint
-- Hand-added: the monthly counts of what the daily rollups hold, and each hour's first and last event time
-- from the log, with the checkpoint's row locked so no projection step moves it meanwhile (the migrations
-- run in one transaction). Only events up to the checkpoint: the rollups count those and no others. Hours of
-- months archived and dropped (src/retention/) keep null bounds: their events are no longer in the log.
SELECT 1 FROM "event_rollup_checkpoint" FOR UPDATE;
--> statement-breakpoint
INSERT INTO "event_rollups_monthly" ("tenant_id", "month", "event_type", "source", "count")
SELECT "tenant_id", date_trunc('month', "day", 'UTC'), "event_type", "source", sum("count")
FROM "event_rollups_daily" GROUP BY 1, 2, 3, 4;
--> statement-breakpoint
UPDATE "event_rollups" r SET "first_at" = b."first_at", "last_at" = b."last_at"
FROM (
  SELECT e."tenant_id", date_trunc('hour', e."ts", 'UTC') AS "hour", e."event_type", e."source",
    min(e."ts") AS "first_at", max(e."ts") AS "last_at"
  FROM "events" e, "event_rollup_checkpoint" c
  WHERE (e."transaction_id", e."position") <= (c."transaction_id", c."position")
  GROUP BY 1, 2, 3, 4
) b
WHERE r."tenant_id" = b."tenant_id" AND r."hour" = b."hour" AND r."event_type" = b."event_type" AND r."source" = b."source";
--> statement-breakpoint
-- Hand-added: the tenant-delete trigger (0020) also removes the tenant's monthly rollups.
CREATE OR REPLACE FUNCTION herald_delete_tenant_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM events WHERE tenant_id = OLD.id;
  DELETE FROM message_events WHERE tenant_id = OLD.id;
  DELETE FROM message_event_keys WHERE tenant_id = OLD.id;
  DELETE FROM webhook_deliveries WHERE tenant_id = OLD.id;
  DELETE FROM communication_suppressions WHERE tenant_id = OLD.id;
  DELETE FROM event_rollups WHERE tenant_id = OLD.id;
  DELETE FROM event_rollups_daily WHERE tenant_id = OLD.id;
  DELETE FROM event_rollups_monthly WHERE tenant_id = OLD.id;
  RETURN OLD;
END $$;
