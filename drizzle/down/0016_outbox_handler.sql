DROP INDEX "outbox_remote_claim_idx";--> statement-breakpoint
ALTER TABLE "outbox" DROP COLUMN "handler";
