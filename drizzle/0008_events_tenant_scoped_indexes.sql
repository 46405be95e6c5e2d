DROP INDEX "events_type_ts_idx";--> statement-breakpoint
DROP INDEX "events_source_ts_idx";