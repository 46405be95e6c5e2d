DROP INDEX "outbound_messages_email_message_id_idx";--> statement-breakpoint
ALTER TABLE "outbound_messages" DROP COLUMN "email_message_id";--> statement-breakpoint
ALTER TABLE "outbound_messages" DROP COLUMN "thread_reason";--> statement-breakpoint
ALTER TABLE "inbound_messages" DROP COLUMN "reference_ids";--> statement-breakpoint
ALTER TABLE "inbound_messages" DROP COLUMN "in_reply_to";--> statement-breakpoint
ALTER TABLE "inbound_messages" DROP COLUMN "thread_reason";
