ALTER TABLE "message_events" ADD COLUMN "created_at" timestamp with time zone DEFAULT now() NOT NULL;
--> statement-breakpoint
ALTER TABLE "message_events" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;
