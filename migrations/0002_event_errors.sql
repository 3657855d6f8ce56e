-- 0002_event_errors: every rejected event, whoever rejected it.
--
-- Rows come from the gateway (its rejects, published on eye.rejects.<client>
-- and copied here by the consumer) and from the consumer itself (events
-- published straight to NATS that fail validation, and dead letters). Each
-- row carries a reject_id fixed when the reject is made: the gateway's is in
-- its message; the consumer derives its own from the stream sequence of the
-- rejected message, so a redelivered message gives the same id.
--
-- Duplicates are handled like in events: ReplacingMergeTree with reject_id in
-- the sort key, copies are identical rows, and readers use FINAL:
--
--     SELECT ... FROM event_errors FINAL
--     WHERE received_at >= ? AND received_at < ? [AND client_id = ?] [AND code = ?]
--     ORDER BY received_us, reject_id
--
-- Unknown text fields (category, session_id, event_id when the event had
-- none, or none that was a string) are empty strings. session_id is kept as
-- sent (it may be the invalid value that caused the reject), so it is a
-- String, not a UUID. raw is the event as received, cut to the configured
-- cap (raw_truncated = 1 when cut).

CREATE TABLE IF NOT EXISTS event_errors
(
    reject_id     String,
    source        String,
    client_id     String,
    received_at   DateTime('UTC'),
    received_us   Int64,
    code          String,
    message       String,
    pointer       String,
    category      String,
    session_id    String,
    event_id      String,
    raw           String,
    raw_truncated UInt8
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (client_id, received_at, reject_id);
