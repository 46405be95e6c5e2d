DROP INDEX "scheduled_actions_action_id_key";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "cancelled_at";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "last_run_at";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "following_run_at";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "slot_max_attempts";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "missed";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "time_zone";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "cron";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "every";--> statement-breakpoint
ALTER TABLE "scheduled_actions" DROP COLUMN "action_id";
