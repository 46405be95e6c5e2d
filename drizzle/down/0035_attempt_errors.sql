ALTER TABLE "outbox" DROP COLUMN "attempt_errors";
--> statement-breakpoint
ALTER TABLE "dead_letters" DROP COLUMN "attempt_errors";
