DROP INDEX "inbound_messages_conversation_idx";--> statement-breakpoint
DROP INDEX "outbound_messages_conversation_idx";--> statement-breakpoint
CREATE INDEX "inbound_messages_conversation_idx" ON "inbound_messages" USING btree ("conversation_id","received_at");
