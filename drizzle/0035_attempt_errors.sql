ALTER TABLE "dead_letters" ADD COLUMN "attempt_errors" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "outbox" ADD COLUMN "attempt_errors" jsonb;