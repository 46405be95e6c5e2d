ALTER TABLE "delivery_rollups" ALTER COLUMN "latency_buckets" SET DATA TYPE integer[];--> statement-breakpoint
ALTER TABLE "outbox" DROP COLUMN "delivered_at";--> statement-breakpoint
-- Hand-added: room on each page for a rollup row's next versions. Every acknowledgement updates its minute's
-- row; with free space on its page the update is HOT and the page's old versions are pruned as it fills,
-- where full pages sent each version to a new page (1 MB for 10 rows after a 30,000-event burst).
ALTER TABLE "delivery_rollups" SET (fillfactor = 20);
