CREATE OR REPLACE FUNCTION herald_event_type_matches(patterns text[], event_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT EXISTS (
    SELECT 1 FROM unnest(patterns) p
    WHERE p = event_type OR p = '*' OR (right(p, 2) = '.*' AND starts_with(event_type, left(p, -1)))
  )
$$;
