CREATE TABLE "delivery_rollups" (
	"tenant_id" uuid NOT NULL,
	"subscription_id" uuid NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"event_type" text NOT NULL,
	"delivered" bigint DEFAULT 0 NOT NULL,
	"retried" bigint DEFAULT 0 NOT NULL,
	"latency_ms_sum" double precision DEFAULT 0 NOT NULL,
	"latency_ms_max" double precision DEFAULT 0 NOT NULL,
	"latency_buckets" bigint[] NOT NULL,
	"last_delivered_at" timestamp with time zone NOT NULL,
	CONSTRAINT "delivery_rollups_pkey" PRIMARY KEY("tenant_id","minute","subscription_id","event_type")
);
--> statement-breakpoint
ALTER TABLE "message_events" ALTER COLUMN "payload" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "message_events" ADD COLUMN "raw_offset" integer;--> statement-breakpoint
ALTER TABLE "message_events" ADD COLUMN "raw_length" integer;--> statement-breakpoint
ALTER TABLE "delivery_rollups" ADD CONSTRAINT "delivery_rollups_subscription_id_subscriptions_id_fk" FOREIGN KEY ("subscription_id") REFERENCES "public"."subscriptions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "delivery_rollups_subscription_idx" ON "delivery_rollups" USING btree ("subscription_id","minute");--> statement-breakpoint
-- Hand-added: row-level security like every tenant-owned table (0002).
ALTER TABLE "delivery_rollups" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "delivery_rollups" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON "delivery_rollups" USING ("tenant_id" = herald_current_tenant()) WITH CHECK ("tenant_id" = herald_current_tenant());
--> statement-breakpoint
-- Hand-added: the latency histogram's bucket of a delivery that took `ms` milliseconds: 0 under 1 ms, then
-- three buckets a doubling (bucket k ≥ 1 holds [2^((k-1)/3), 2^(k/3)) ms), the last (71) from ~3.3 hours on.
-- In double precision (a numeric logarithm cost ~10 µs a delivery); the 1e-9 puts a value on a bucket's
-- edge in the bucket it starts however the logarithm rounds, as `latencyBuckets.ts` does.
CREATE FUNCTION herald_latency_bucket(ms double precision) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ms IS NULL OR ms < 1 THEN 0 ELSE least(71, 1 + floor(ln(ms) / ln(2::float8) * 3 + 1e-9)::int) END
$$;
--> statement-breakpoint
-- Hand-added: the outbox's delivered rows, counted into the rollups, then deleted: from now on a delivered
-- row is counted and deleted as it completes.
INSERT INTO "delivery_rollups" ("tenant_id", "minute", "subscription_id", "event_type", "delivered", "retried",
  "latency_ms_sum", "latency_ms_max", "latency_buckets", "last_delivered_at")
SELECT g.tenant_id, g.minute, g.subscription_id, g.event_type, g.n, g.r, g.s, g.mx,
  (SELECT array_agg(coalesce(x.c, 0) ORDER BY k) FROM generate_series(0, 71) k
    LEFT JOIN (SELECT b, count(*) AS c FROM unnest(g.bs) b GROUP BY b) x ON x.b = k),
  g.last
FROM (
  SELECT tenant_id, minute, subscription_id, event_type, count(*) AS n, count(*) FILTER (WHERE attempts > 1) AS r,
    sum(ms) AS s, max(ms) AS mx, max(at) AS last, array_agg(herald_latency_bucket(ms)) AS bs
  FROM (
    SELECT tenant_id, subscription_id, event_type, attempts, coalesce(delivered_at, updated_at) AS at,
      date_trunc('minute', coalesce(delivered_at, updated_at), 'UTC') AS minute,
      greatest(0, extract(epoch FROM (coalesce(delivered_at, updated_at) - created_at)) * 1000)::double precision AS ms
    FROM "outbox" WHERE "status" = 'completed'
  ) done
  GROUP BY 1, 2, 3, 4
) g;
--> statement-breakpoint
DELETE FROM "outbox" WHERE "status" = 'completed';
