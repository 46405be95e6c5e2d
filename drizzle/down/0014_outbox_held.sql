-- Earlier versions do not know held rows: make them due (paused subscriptions are still skipped by the claim).
UPDATE "outbox" SET "next_attempt_at" = now() WHERE "status" = 'pending' AND "next_attempt_at" = 'infinity';
--> statement-breakpoint
DROP INDEX "outbox_held_idx";
