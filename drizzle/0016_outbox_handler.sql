ALTER TABLE "outbox" ADD COLUMN "handler" text;--> statement-breakpoint
-- Rows still to deliver to an in-process handler are marked like the ones queued from now on.
UPDATE "outbox" o SET "handler" = s."sink"->>'name' FROM "subscriptions" s WHERE s."id" = o."subscription_id" AND s."sink"->>'type' = 'handler' AND o."status" IN ('pending', 'processing');--> statement-breakpoint
CREATE INDEX "outbox_remote_claim_idx" ON "outbox" USING btree ("next_attempt_at","id") WHERE "outbox"."status" = 'pending' and "outbox"."handler" is null;
