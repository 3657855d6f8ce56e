-- The rejects `eye-consumer replay` re-validates (src/replay/): received in
-- [from, to) — in seconds for the partitions, then exactly in microseconds —
-- restricted to some codes, clients and categories (an empty list means any),
-- each reject once, one page after the key (received_us, reject_id).
-- example binds: 1632600000, 1632700001, 1632600000000000, 1632700000000000, [], [], ['demo'], ['demo'], ['party'], ['party'], -1, -1, '', 1000
SELECT reject_id, source, client_id, received_us, code, message, category, raw, raw_truncated
FROM event_errors FINAL
WHERE received_at >= toDateTime(?, 'UTC') AND received_at < toDateTime(?, 'UTC')
  AND received_us >= ? AND received_us < ?
  AND (empty(CAST(? AS Array(String))) OR has(CAST(? AS Array(String)), code))
  AND (empty(CAST(? AS Array(String))) OR has(CAST(? AS Array(String)), client_id))
  AND (empty(CAST(? AS Array(String))) OR has(CAST(? AS Array(String)), category))
  AND (received_us > ? OR (received_us = ? AND reject_id > ?))
ORDER BY received_us, reject_id
LIMIT ?
