-- One session's events in order of occurrence, each event once.
-- example binds: 'e2085be5-9137-4e4e-80b5-f1ffddc25423'
SELECT event_id, client_id, session_id, category, name, data, timestamp_us, received_us
FROM events FINAL
WHERE session_id = toUUID(?)
ORDER BY timestamp_us, event_id
