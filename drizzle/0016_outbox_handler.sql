ALTER TABLE "outbox" ADD COLUMN "handler" text;--> statement-breakpoint
-- Rows of in-process handlers that may still be delivered (dead ones can be retried) are marked like the ones
-- queued from now on; delivered rows are left as they are.
UPDATE "outbox" o SET "handler" = s."sink"->>'name' FROM "subscriptions" s WHERE s."id" = o."subscription_id" AND s."sink"->>'type' = 'handler' AND o."status" <> 'completed';--> statement-breakpoint
DROP INDEX "outbox_claim_idx";--> statement-breakpoint
CREATE INDEX "outbox_claim_idx" ON "outbox" USING btree ("next_attempt_at","id") WHERE "outbox"."status" = 'pending' and "outbox"."handler" is null;--> statement-breakpoint
CREATE INDEX "outbox_handler_claim_idx" ON "outbox" USING btree ("handler","next_attempt_at","id") WHERE "outbox"."status" = 'pending' and "outbox"."handler" is not null;
