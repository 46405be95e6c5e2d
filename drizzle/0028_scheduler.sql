ALTER TABLE "scheduled_actions" ADD COLUMN "action_id" uuid;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "every" text;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "cron" text;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "time_zone" text;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "missed" text DEFAULT 'skip' NOT NULL;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "slot_max_attempts" integer DEFAULT 5 NOT NULL;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "following_run_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "last_run_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "scheduled_actions" ADD COLUMN "cancelled_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "scheduled_actions_action_id_key" ON "scheduled_actions" USING btree ("tenant_id","action_id") WHERE "scheduled_actions"."action_id" is not null;