ALTER TABLE "message_events" DROP COLUMN "log_event_id";
