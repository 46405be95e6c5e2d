CREATE INDEX "events_type_ts_idx" ON "events" USING btree ("event_type","ts" DESC NULLS LAST);
--> statement-breakpoint
CREATE INDEX "events_source_ts_idx" ON "events" USING btree ("source","ts" DESC NULLS LAST);
