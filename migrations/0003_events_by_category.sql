-- 0003_events_by_category: the events again, sorted for "category in a time
-- range" reads.
--
-- events is sorted by session, so a category + time range query scans the
-- whole table (~230 ms on 5 M rows, DESIGN.md). This table holds the same
-- rows sorted by (category, timestamp_us, ...), filled by a materialized view
-- on every insert into events (the view is part of the insert: when the
-- insert is confirmed, both tables have the rows). Same engine and same
-- duplicate rule as events; read it with FINAL:
--
--     SELECT ... FROM events_by_category FINAL
--     WHERE category = ? AND timestamp_us >= ? AND timestamp_us < ?
--     ORDER BY timestamp_us, event_id
--
-- It only sees rows inserted after it exists; it is created in the same
-- release as events, so there is nothing to backfill.

-- `AS events`: the same columns as events, by construction.
CREATE TABLE IF NOT EXISTS events_by_category AS events
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (category, timestamp_us, client_id, event_id, session_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_category_mv
TO events_by_category
AS SELECT
    event_id, client_id, session_id, category, name, data,
    timestamp, timestamp_us, received_at, received_us
FROM events;
