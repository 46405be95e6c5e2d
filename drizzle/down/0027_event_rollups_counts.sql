DROP INDEX "event_rollups_daily_counts_idx";--> statement-breakpoint
DROP INDEX "event_rollups_counts_idx";
