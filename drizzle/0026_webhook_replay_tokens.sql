CREATE TABLE "webhook_replay_tokens" (
	"source_id" uuid NOT NULL,
	"token" text NOT NULL,
	"tenant_id" uuid NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "webhook_replay_tokens_source_id_token_pk" PRIMARY KEY("source_id","token")
);
--> statement-breakpoint
ALTER TABLE "webhook_replay_tokens" ADD CONSTRAINT "webhook_replay_tokens_source_id_webhook_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "public"."webhook_sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_replay_tokens" ADD CONSTRAINT "webhook_replay_tokens_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Hand-added: row-level security like every tenant-owned table (0002).
ALTER TABLE "webhook_replay_tokens" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "webhook_replay_tokens" FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY tenant_isolation ON "webhook_replay_tokens" USING ("tenant_id" = herald_current_tenant()) WITH CHECK ("tenant_id" = herald_current_tenant());
