-- The rank table as 0006 left it (email statuses only). A message already at an SMS status ranks -1 again.
CREATE OR REPLACE FUNCTION herald_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE status
    WHEN 'sent' THEN 0 WHEN 'processed' THEN 1 WHEN 'deferred' THEN 2 WHEN 'delivered' THEN 3
    WHEN 'bounced' THEN 4 WHEN 'blocked' THEN 4 WHEN 'dropped' THEN 4
    WHEN 'opened' THEN 5 WHEN 'clicked' THEN 6
    WHEN 'unsubscribed' THEN 7 WHEN 'spam_reported' THEN 7
    ELSE -1 END
$$;
