-- 0001_events: the accepted events.
--
-- Time. ClickHouse 18.16 has no DateTime64, so an instant is stored twice:
--   timestamp_us  Int64            microseconds since 1970-01-01 UTC, exact;
--                                  the value every reader orders, filters and
--                                  prints by (RFC 3339 with 6 digits, `Z`).
--   timestamp     DateTime('UTC')  the same instant cut to the second
--                                  (= intDiv(timestamp_us, 1000000)), for the
--                                  monthly partition and for analysts' SQL.
-- The consumer writes both from one value, so they never disagree. Same for
-- received_us / received_at: when JetStream stored the message (so every
-- redelivered copy of a message carries the same value).
--
-- Duplicates. Delivery is at-least-once: a consumer that inserted a batch and
-- died before acking it gets the batch again and inserts it again. Such a
-- copy is the same row, value for value (event_id, client_id, session_id and
-- times come from the message, not from the consumer's clock). The engine is
-- ReplacingMergeTree, which keeps one row per sort key when parts merge; the
-- sort key (session_id, timestamp_us, client_id, event_id) contains the
-- event's identity (client_id, event_id: the id is unique per client, as the
-- JetStream Nats-Msg-Id is), and a copy always lands in the same monthly
-- partition as its original. Merges happen eventually, so readers dedup
-- too. The read pattern (the query service uses it):
--
--     SELECT ... FROM events FINAL
--     WHERE session_id = ?
--     ORDER BY timestamp_us, event_id
--
-- FINAL merges the matching rows on the fly with the same rule as the
-- background merge, so a reader sees each event once, before or after any
-- merge. (`LIMIT 1 BY session_id, timestamp_us, client_id, event_id` after
-- the ORDER BY is equivalent and can be cheaper on large scans.)
--
-- The sort key serves "one session in time order" (DESIGN.md). Reads by
-- category and time range have their own table, events_by_category (0003).
--
-- Nothing here needs a setting or an experimental flag, and every statement
-- runs unchanged on ClickHouse 18.16 and 26.x (deploy/chdb_check.py proves
-- the second). Statements end with `;` at the end of a line.

CREATE TABLE IF NOT EXISTS events
(
    event_id     String,
    client_id    String,
    session_id   UUID,
    category     String,
    name         String,
    data         String,
    timestamp    DateTime('UTC'),
    timestamp_us Int64,
    received_at  DateTime('UTC'),
    received_us  Int64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (session_id, timestamp_us, client_id, event_id);
