-- A category's events in a time range [from, to) in microseconds, each event once.
-- example binds: 'party', 1632600000000000, 1632700000000000
SELECT event_id, client_id, session_id, category, name, data, timestamp_us, received_us
FROM events_by_category FINAL
WHERE category = ? AND timestamp_us >= ? AND timestamp_us < ?
ORDER BY timestamp_us, event_id
