DROP INDEX "scheduled_actions_dedupe_key";
--> statement-breakpoint
CREATE UNIQUE INDEX "scheduled_actions_dedupe_key" ON "scheduled_actions" USING btree ("tenant_id","dedupe_key");
