-- Registering outbound messages (src/messages/register.ts): the campaign check, the link and conversation locks,
-- the insert and the search for events waiting for the new messages, as one function. A single registration is
-- then one statement outside any transaction (one round trip), and a batch one statement in its transaction.
--
-- One statement could not do it: its snapshot is taken before its first lock is granted, so an event a processor
-- committed while we waited for that lock would be missed, and stay unlinked for good. A VOLATILE function's
-- statements each take a new snapshot (READ COMMITTED): after the locks, each sees what committed before them.
--
-- p_alone: the caller has no transaction around it. When events wait for a new message, linking them (status,
-- campaigns: register.ts) must commit with it, so the function refuses with SQLSTATE HR002 and nothing is kept;
-- the caller registers the message again in a transaction. HR001: a campaign id is not the tenant's.
--
-- Answers {"inserted": [rows], "waiting": [events], "existing": [rows]}: the rows inserted; the unlinked events
-- whose provider message id is a new message's (equal, or it followed by "."); and, when some inserted nothing,
-- the stored messages holding the batch's dedupe keys (seen with a new snapshot: a key committed by a concurrent
-- registration too). Each is null when empty.
CREATE OR REPLACE FUNCTION herald_register_messages(
  p_tenant uuid,
  p_campaigns uuid[],
  p_orphan_namespace integer,
  p_orphan_keys integer[],
  p_conversation_namespace integer,
  p_conversation_keys integer[],
  p_alone boolean,
  p_ids uuid[],
  p_channels text[],
  p_providers text[],
  p_to_addresses text[],
  p_provider_message_ids text[],
  p_from_addresses text[],
  p_subjects text[],
  p_email_message_ids text[],
  p_contact_ids text[],
  p_campaign_ids uuid[],
  p_dedupe_keys text[],
  p_sent_ats timestamptz[],
  p_metadata json
) RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_inserted json;
  v_waiting json;
  v_existing json;
BEGIN
  -- A foreign key does not see tenants: each campaign must be this tenant's.
  IF cardinality(p_campaigns) > 0 AND (SELECT count(*) FROM contact_campaigns c
      WHERE c.tenant_id = p_tenant AND c.id = ANY (p_campaigns)) < cardinality(p_campaigns) THEN
    RAISE EXCEPTION 'campaign_id is not a campaign of this tenant' USING ERRCODE = 'HR001';
  END IF;
  -- In ascending order, as processors (shared) and inbound messages take theirs: no cycle of waits.
  PERFORM pg_advisory_xact_lock(p_orphan_namespace, k)
    FROM (SELECT DISTINCT k FROM unnest(p_orphan_keys) AS k WHERE k IS NOT NULL) AS keys ORDER BY k;
  PERFORM pg_advisory_xact_lock(p_conversation_namespace, k)
    FROM (SELECT DISTINCT k FROM unnest(p_conversation_keys) AS k WHERE k IS NOT NULL) AS keys ORDER BY k;

  WITH input AS (
    SELECT x.* FROM unnest(p_ids, p_channels, p_providers, p_to_addresses, p_provider_message_ids,
      p_from_addresses, p_subjects, p_email_message_ids, p_contact_ids, p_campaign_ids, p_dedupe_keys,
      p_sent_ats, array(SELECT d FROM json_array_elements(p_metadata) WITH ORDINALITY AS e(d, i) ORDER BY i))
      WITH ORDINALITY AS x(id, channel, provider, to_address, provider_message_id, from_address, subject,
        email_message_id, contact_id, campaign_id, dedupe_key, sent_at, metadata, ord)
  ), moved AS (
    -- The conversations of the batch's recipients that exist (the first inbound message from an address creates
    -- one), moved to the top and counted. Their buckets' locks are held: no other registration or inbound
    -- message moves them meanwhile. Messages whose dedupe key is already stored are not counted; a registration
    -- racing another with the same new key may count one too many.
    UPDATE conversations c SET last_activity_at = greatest(c.last_activity_at, r.at),
      message_count = c.message_count + r.n, updated_at = now()
    FROM (
      SELECT i.channel, i.to_address, max(coalesce(i.sent_at, now())) AS at,
        count(DISTINCT coalesce(i.dedupe_key, i.id::text))::int AS n
      FROM input i
      -- A probe of the dedupe key's unique index per message: a scalar subquery, which the planner cannot turn
      -- into a hash of all the tenant's messages (as it does with "not exists" beside an "or", or an anti-join
      -- when its statistics think the tenant has few).
      WHERE i.dedupe_key IS NULL OR (SELECT o.id FROM outbound_messages o
        WHERE o.tenant_id = p_tenant AND o.dedupe_key = i.dedupe_key LIMIT 1) IS NULL
      GROUP BY i.channel, i.to_address
    ) r
    WHERE c.tenant_id = p_tenant AND c.channel = r.channel AND c.participant_address = r.to_address
    RETURNING 1
  ), inserted AS (
    INSERT INTO outbound_messages (id, tenant_id, channel, provider, to_address, provider_message_id,
      from_address, subject, email_message_id, contact_id, campaign_id, dedupe_key, metadata, sent_at, status_at,
      thread_reason)
    SELECT i.id, p_tenant, i.channel, i.provider, i.to_address, i.provider_message_id, i.from_address, i.subject,
      i.email_message_id, i.contact_id, i.campaign_id, i.dedupe_key, i.metadata::jsonb, coalesce(i.sent_at, now()),
      coalesce(i.sent_at, now()), 'outbound'
    FROM input i
    -- Key order, as the events' store statement: concurrent batches sharing keys never wait in a cycle. The first
    -- of a key repeated within the batch is inserted; the others conflict with it and insert nothing.
    ORDER BY i.dedupe_key, i.ord
    ON CONFLICT DO NOTHING
    RETURNING *
  ), waiting AS (
    SELECT e.id, e.event_at::text AS event_at, e.provider_message_id
    FROM message_events e
    WHERE e.tenant_id = p_tenant AND e.outbound_message_id IS NULL
      AND split_part(e.provider_message_id, '.', 1) IN (
        SELECT split_part(n.provider_message_id, '.', 1) FROM inserted n WHERE n.provider_message_id IS NOT NULL)
      AND EXISTS (SELECT 1 FROM inserted n WHERE n.provider = e.provider
        AND (e.provider_message_id = n.provider_message_id
             OR starts_with(e.provider_message_id, n.provider_message_id || '.')))
  )
  SELECT (SELECT json_agg(row_to_json(m)) FROM inserted m), (SELECT json_agg(row_to_json(w)) FROM waiting w)
    INTO v_inserted, v_waiting;

  IF p_alone AND v_waiting IS NOT NULL THEN
    RAISE EXCEPTION 'events wait for the new message: register it in a transaction' USING ERRCODE = 'HR002';
  END IF;

  IF coalesce(json_array_length(v_inserted), 0) < cardinality(p_ids) THEN
    SELECT json_agg(row_to_json(o)) INTO v_existing FROM outbound_messages o
    WHERE o.tenant_id = p_tenant AND o.dedupe_key = ANY (p_dedupe_keys);
  END IF;

  RETURN json_build_object('inserted', v_inserted, 'waiting', v_waiting, 'existing', v_existing);
END
$$;
