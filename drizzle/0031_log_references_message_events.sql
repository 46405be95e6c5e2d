ALTER TABLE "events" ALTER COLUMN "payload" DROP NOT NULL;
--> statement-breakpoint
-- Hand-written: the dedupe keys rebuilt as (tenant, MD5 of "provider:dedupe_key" as a UUID), in a new table
-- (dropping the text columns would leave their bytes in every row until a rewrite).
CREATE TABLE "message_event_keys_0031" (
	"tenant_id" uuid NOT NULL,
	"key_hash" uuid NOT NULL
);
--> statement-breakpoint
INSERT INTO "message_event_keys_0031" ("tenant_id", "key_hash")
SELECT DISTINCT "tenant_id", md5("provider" || ':' || "dedupe_key")::uuid FROM "message_event_keys";
--> statement-breakpoint
DROP TABLE "message_event_keys";
--> statement-breakpoint
ALTER TABLE "message_event_keys_0031" RENAME TO "message_event_keys";
--> statement-breakpoint
ALTER TABLE "message_event_keys" ADD CONSTRAINT "message_event_keys_pkey" PRIMARY KEY("tenant_id","key_hash");
--> statement-breakpoint
-- Row-level security like every tenant-owned table (0002).
ALTER TABLE "message_event_keys" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "message_event_keys" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON "message_event_keys" USING ("tenant_id" = herald_current_tenant()) WITH CHECK ("tenant_id" = herald_current_tenant());
