-- Hand-written: the SMS statuses (Twilio's MessageStatus) join the rank table, whose ranks are spaced by ten so
-- the two channels interleave (src/domain/messageStatus.ts holds the same table and explains it; a test keeps
-- them equal). The email statuses keep their order. No index or stored value holds a rank, so the function
-- is replaced in place.
CREATE OR REPLACE FUNCTION herald_status_rank(status text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE status
    WHEN 'sent' THEN 0
    WHEN 'accepted' THEN 3 WHEN 'scheduled' THEN 4 WHEN 'queued' THEN 5
    WHEN 'processed' THEN 10 WHEN 'sending' THEN 15 WHEN 'deferred' THEN 20
    WHEN 'sent_to_carrier' THEN 25 WHEN 'partially_delivered' THEN 28 WHEN 'delivered' THEN 30
    WHEN 'bounced' THEN 40 WHEN 'blocked' THEN 40 WHEN 'dropped' THEN 40
    WHEN 'canceled' THEN 41 WHEN 'failed' THEN 42 WHEN 'undelivered' THEN 43
    WHEN 'opened' THEN 50 WHEN 'read' THEN 55 WHEN 'clicked' THEN 60
    WHEN 'unsubscribed' THEN 70 WHEN 'spam_reported' THEN 70
    ELSE -1 END
$$;
