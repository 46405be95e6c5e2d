-- `message.*` events of the webhook processor get their payload stored again, from their message events.
UPDATE "events" e SET "payload" = jsonb_build_object('message_event_id', m."id", 'provider', m."provider",
  'provider_event_id', m."provider_event_id", 'provider_message_id', m."provider_message_id",
  'recipient', m."recipient", 'url', m."url", 'reason', m."reason", 'group_id', m."group_id")
FROM "message_events" m WHERE e."payload" IS NULL AND m."id" = e."id" AND m."event_at" = e."ts";
--> statement-breakpoint
UPDATE "events" SET "payload" = '{}' WHERE "payload" IS NULL;
--> statement-breakpoint
ALTER TABLE "events" ALTER COLUMN "payload" SET NOT NULL;
--> statement-breakpoint
-- Message events appended since 0031 name their log event by their own id.
UPDATE "message_events" SET "log_event_id" = "id" WHERE "log_event_id" IS NULL;
--> statement-breakpoint
-- The text keys again, from the stored events (each stored event has its key).
CREATE TABLE "message_event_keys_0031" (
	"tenant_id" uuid NOT NULL,
	"provider" text NOT NULL,
	"dedupe_key" text NOT NULL,
	"message_event_id" uuid NOT NULL,
	"event_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
INSERT INTO "message_event_keys_0031" ("tenant_id", "provider", "dedupe_key", "message_event_id", "event_at")
SELECT DISTINCT ON ("tenant_id", "provider", "dedupe_key") "tenant_id", "provider", "dedupe_key", "id", "event_at"
FROM "message_events" ORDER BY "tenant_id", "provider", "dedupe_key", "event_at", "id";
--> statement-breakpoint
DROP TABLE "message_event_keys";
--> statement-breakpoint
ALTER TABLE "message_event_keys_0031" RENAME TO "message_event_keys";
--> statement-breakpoint
ALTER TABLE "message_event_keys" ADD CONSTRAINT "message_event_keys_pkey" PRIMARY KEY("tenant_id","provider","dedupe_key");
--> statement-breakpoint
ALTER TABLE "message_event_keys" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "message_event_keys" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON "message_event_keys" USING ("tenant_id" = herald_current_tenant()) WITH CHECK ("tenant_id" = herald_current_tenant());
