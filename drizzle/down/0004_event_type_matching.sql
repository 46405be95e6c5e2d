DROP FUNCTION IF EXISTS herald_event_type_matches(text[], text);
