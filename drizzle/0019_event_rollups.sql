CREATE TABLE "event_rollup_checkpoint" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"transaction_id" "xid8" NOT NULL,
	"position" bigint NOT NULL,
	CONSTRAINT "event_rollup_checkpoint_one_row" CHECK ("event_rollup_checkpoint"."id")
);
--> statement-breakpoint
CREATE TABLE "event_rollups" (
	"tenant_id" uuid NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"event_type" text NOT NULL,
	"source" "event_source" NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "event_rollups_pkey" PRIMARY KEY("tenant_id","hour","event_type","source")
);
--> statement-breakpoint
-- Hand-added: the projection starts at the beginning of the log (every (transaction id, position) is after it).
INSERT INTO "event_rollup_checkpoint" ("transaction_id", "position") VALUES ('0', 0);
--> statement-breakpoint
-- Hand-added: row-level security like every tenant-owned table (0002).
ALTER TABLE "event_rollups" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "event_rollups" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON "event_rollups" USING ("tenant_id" = herald_current_tenant()) WITH CHECK ("tenant_id" = herald_current_tenant());
--> statement-breakpoint
-- Hand-added: the tenant-delete trigger (0003, 0007, 0012) also removes the tenant's rollups (no foreign key:
-- the projection adds counts of many tenants per statement, and a tenant deleted meanwhile must not fail it).
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
