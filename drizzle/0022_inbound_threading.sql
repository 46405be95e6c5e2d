ALTER TABLE "inbound_messages" ADD COLUMN "thread_reason" text;--> statement-breakpoint
ALTER TABLE "inbound_messages" ADD COLUMN "in_reply_to" text;--> statement-breakpoint
ALTER TABLE "inbound_messages" ADD COLUMN "reference_ids" text[];--> statement-breakpoint
ALTER TABLE "outbound_messages" ADD COLUMN "thread_reason" text;--> statement-breakpoint
ALTER TABLE "outbound_messages" ADD COLUMN "email_message_id" text;--> statement-breakpoint
CREATE INDEX "outbound_messages_email_message_id_idx" ON "outbound_messages" USING btree ("tenant_id","email_message_id") WHERE "outbound_messages"."email_message_id" is not null;