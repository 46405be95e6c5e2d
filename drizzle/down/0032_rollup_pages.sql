ALTER TABLE "delivery_rollups" RESET (fillfactor);
--> statement-breakpoint
ALTER TABLE "delivery_rollups" ALTER COLUMN "latency_buckets" SET DATA TYPE bigint[];
--> statement-breakpoint
ALTER TABLE "outbox" ADD COLUMN "delivered_at" timestamp with time zone;
