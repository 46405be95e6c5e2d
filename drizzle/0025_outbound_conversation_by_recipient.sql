ALTER TABLE "outbound_messages" DROP CONSTRAINT "outbound_messages_conversation_id_conversations_id_fk";
--> statement-breakpoint
DROP INDEX "outbound_messages_conversation_idx";--> statement-breakpoint
DROP INDEX "outbound_messages_recipient_idx";--> statement-breakpoint
CREATE INDEX "outbound_messages_recipient_idx" ON "outbound_messages" USING btree ("tenant_id","channel","to_address","sent_at","id");--> statement-breakpoint
ALTER TABLE "outbound_messages" DROP COLUMN "conversation_id";