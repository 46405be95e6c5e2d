CREATE INDEX "outbox_held_idx" ON "outbox" USING btree ("subscription_id") WHERE "outbox"."status" = 'pending' and "outbox"."next_attempt_at" = 'infinity';
--> statement-breakpoint
-- Rows already waiting for a paused subscription are held like the ones queued from now on.
UPDATE "outbox" SET "next_attempt_at" = 'infinity' WHERE "status" = 'pending' AND "subscription_id" IN (SELECT "id" FROM "subscriptions" WHERE "paused_at" IS NOT NULL);
