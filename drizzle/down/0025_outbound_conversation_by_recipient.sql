ALTER TABLE "outbound_messages" ADD COLUMN "conversation_id" uuid;--> statement-breakpoint
ALTER TABLE "outbound_messages" ADD CONSTRAINT "outbound_messages_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
UPDATE "outbound_messages" o SET "conversation_id" = c."id" FROM "conversations" c WHERE c."tenant_id" = o."tenant_id" AND c."channel" = o."channel" AND c."participant_address" = o."to_address";--> statement-breakpoint
DROP INDEX "outbound_messages_recipient_idx";--> statement-breakpoint
CREATE INDEX "outbound_messages_recipient_idx" ON "outbound_messages" USING btree ("tenant_id","channel","to_address");--> statement-breakpoint
CREATE INDEX "outbound_messages_conversation_idx" ON "outbound_messages" USING btree ("conversation_id","sent_at","id");
