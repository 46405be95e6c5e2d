-- Custom migration: partitions made on demand no longer shut out readers and writers of their table.
-- CREATE TABLE … PARTITION OF takes ACCESS EXCLUSIVE on the parent and then, for message_events' foreign key,
-- SHARE ROW EXCLUSIVE on outbound_messages: a message registration holding its new row (ROW EXCLUSIVE on
-- outbound_messages) and then reading message_events waited for the creator, which waited for it (40P01,
-- answered 503). A partition is now made as a table of its own, shaped like the parent, and attached: ATTACH
-- PARTITION takes only SHARE UPDATE EXCLUSIVE on the parent and its indexes, which no read or write waits for
-- (it still takes SHARE ROW EXCLUSIVE on the tables its foreign keys reference, for a moment when the caller
-- makes the partition in a transaction of its own, as Herald's writers do: see src/db/partitions.ts).
-- Creators still take turns on the advisory lock, and a name found already there (made by a concurrent
-- caller that committed meanwhile) counts as made.
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
      BEGIN
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)',
          partition_name, parent);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
          parent, partition_name, month_start, month_start + interval '1 month');
      EXCEPTION WHEN duplicate_table THEN
        NULL;
      END;
    END IF;
  END LOOP;
END $$;
