DROP INDEX "outbox_handler_claim_idx";--> statement-breakpoint
DROP INDEX "outbox_claim_idx";--> statement-breakpoint
CREATE INDEX "outbox_claim_idx" ON "outbox" USING btree ("next_attempt_at","id") WHERE "outbox"."status" = 'pending';--> statement-breakpoint
ALTER TABLE "outbox" DROP COLUMN "handler";
