-- Which of these event ids are in events already (any copy, so no FINAL):
-- `eye-consumer replay` stores only the others, and a second replay stores
-- nothing. A scan of the event_id column; replays are rare and operator-driven.
-- example binds: ['e1']
SELECT DISTINCT client_id, event_id
FROM events
WHERE has(CAST(? AS Array(String)), event_id)
