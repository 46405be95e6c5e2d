-- Custom migration: what Drizzle cannot declare.

-- Monthly range partitions (UTC months) of a partitioned table, created if missing. Herald calls it at
-- migrate time (current month and the next two) and before writing rows of a month it has not seen.
-- The advisory lock makes concurrent callers wait instead of racing on CREATE TABLE.
CREATE OR REPLACE FUNCTION herald_ensure_partitions(parent text, from_month timestamptz, months integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  month_start timestamptz;
  partition_name text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('herald_partitions'));
  FOR i IN 0 .. months - 1 LOOP
    month_start := date_trunc('month', from_month AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(months => i);
    partition_name := parent || '_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
    IF to_regclass(quote_ident(partition_name)) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        partition_name, parent, month_start, month_start + interval '1 month');
    END IF;
  END LOOP;
END $$;
--> statement-breakpoint
-- Row-level security on every tenant-owned table (each has tenant_id; tenants is keyed by id).
-- FORCE makes the policy bind the table owner too; superusers and BYPASSRLS roles still pass.
DO $$
DECLARE t record;
BEGIN
  FOR t IN
    SELECT c.relname, a.attname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('tenant_id', 'id') AND NOT a.attisdropped
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND (a.attname = 'tenant_id' OR c.relname = 'tenants')
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.relname);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (%I = herald_current_tenant()) WITH CHECK (%I = herald_current_tenant())',
      t.relname, t.attname, t.attname);
  END LOOP;
END $$;
