-- The store times of message events (never read: a delivery keeps when it was received and processed).
ALTER TABLE "message_events" DROP COLUMN "created_at";--> statement-breakpoint
ALTER TABLE "message_events" DROP COLUMN "updated_at";