-- example row: ('r1', 'consumer', 'demo', 1632647727, 1632647727500000, 'invalid_session_id', 'not a UUID', '/session_id', 'party', 'nope', '', '{"session_id":"nope"}', 0)
INSERT INTO event_errors (reject_id, source, client_id, received_at, received_us, code, message, pointer, category, session_id, event_id, raw, raw_truncated)
