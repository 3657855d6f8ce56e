-- Rejects received in a time range [from, to) in seconds, each reject once.
-- example binds: 1632600000, 1632700000
SELECT reject_id, source, client_id, received_us, code, message, pointer, category, session_id, event_id, raw, raw_truncated
FROM event_errors FINAL
WHERE received_at >= toDateTime(?, 'UTC') AND received_at < toDateTime(?, 'UTC')
ORDER BY received_us, reject_id
