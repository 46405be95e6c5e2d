-- Back to creating each partition with CREATE TABLE … PARTITION OF (as 0002 did); partitions made meanwhile stay.
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
