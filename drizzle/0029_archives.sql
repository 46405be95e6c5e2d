CREATE TABLE "archives" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "archives_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"table_name" text NOT NULL,
	"month" timestamp with time zone NOT NULL,
	"partition_name" text NOT NULL,
	"state" text NOT NULL,
	"path" text NOT NULL,
	"format" text NOT NULL,
	"rows" bigint NOT NULL,
	"bytes" bigint NOT NULL,
	"sha256" text NOT NULL,
	"content_sha256" text NOT NULL,
	"verified_at" timestamp with time zone,
	"dropped_at" timestamp with time zone,
	"restored_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "archives_state" CHECK ("archives"."state" in ('exported', 'verified', 'dropped', 'restored'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX "archives_table_month_key" ON "archives" USING btree ("table_name","month");