-- Events whose payload is a slice of their archived delivery get it as JSON again.
UPDATE "message_events" m SET "payload" = convert_from(substring(d."body" FROM m."raw_offset" + 1 FOR m."raw_length"), 'UTF8')::jsonb
FROM "webhook_deliveries" d WHERE d."id" = m."delivery_id" AND m."payload" IS NULL;
--> statement-breakpoint
ALTER TABLE "message_events" ALTER COLUMN "payload" SET NOT NULL;
--> statement-breakpoint
ALTER TABLE "message_events" DROP COLUMN "raw_offset";
--> statement-breakpoint
ALTER TABLE "message_events" DROP COLUMN "raw_length";
--> statement-breakpoint
-- The delivered outbox rows the rollups counted are gone: an older Herald's stats start from the downgrade.
DROP TABLE "delivery_rollups";
--> statement-breakpoint
DROP FUNCTION herald_latency_bucket(double precision);
