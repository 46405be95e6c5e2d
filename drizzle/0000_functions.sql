-- Functions the schema relies on; Drizzle cannot declare functions, so they live in this custom migration.

-- Time-ordered UUIDv7 (48-bit Unix milliseconds, then random bits) for SQL-side inserts; PostgreSQL 15 has none.
CREATE OR REPLACE FUNCTION herald_uuidv7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
      PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
      FROM 1 FOR 6), 52, 1), 53, 1),
    'hex')::uuid
$$;
--> statement-breakpoint
-- The tenant of the current transaction, set by the application with set_config('app.tenant_id', …, true).
-- NULL when unset (or reset to ''), so row-level security then matches no row.
CREATE OR REPLACE FUNCTION herald_current_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('app.tenant_id', true), '')::uuid
$$;
