DROP INDEX "message_events_unlinked_idx";--> statement-breakpoint
ALTER TABLE "communication_suppressions" ADD COLUMN "source_event_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "message_events_unlinked_idx" ON "message_events" USING btree ("tenant_id",split_part("provider_message_id", '.', 1)) WHERE "message_events"."outbound_message_id" is null;--> statement-breakpoint
-- Hand-added: the rank of a message status (src/domain/messageStatus.ts holds the same table and explains it).
CREATE OR REPLACE FUNCTION herald_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE status
    WHEN 'sent' THEN 0 WHEN 'processed' THEN 1 WHEN 'deferred' THEN 2 WHEN 'delivered' THEN 3
    WHEN 'bounced' THEN 4 WHEN 'blocked' THEN 4 WHEN 'dropped' THEN 4
    WHEN 'opened' THEN 5 WHEN 'clicked' THEN 6
    WHEN 'unsubscribed' THEN 7 WHEN 'spam_reported' THEN 7
    ELSE -1 END
$$;
