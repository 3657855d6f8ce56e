//! The consumer's Prometheus metrics. Names are constants here and only here;
//! the registry adds the `eye_consumer_` prefix (and `_total` to counters).
//!
//! They report data at risk, not just liveness: what waits in JetStream (lag),
//! what was parked (dead letters), and how storing goes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Histogram: messages per processed batch.
pub const BATCH_SIZE: &str = "batch_size";
/// Histogram: seconds one INSERT took, by table.
pub const INSERT_DURATION: &str = "insert_duration_seconds";
/// Counter: rows inserted into `events` (copies from redeliveries included).
pub const EVENTS_STORED: &str = "events_stored";
/// Counter: rejects stored in `event_errors`, by source and code.
pub const REJECTS: &str = "rejects";
/// Counter: messages received again (JetStream delivery count above 1).
pub const REDELIVERIES: &str = "redeliveries";
/// Counter: messages parked on the dead-letter subject, by code.
pub const DEAD_LETTERS: &str = "dead_letters";
/// Counter: failed INSERTs, by kind (`unavailable`, `refused`).
pub const INSERT_FAILURES: &str = "insert_failures";
/// Gauge: messages on EYE_EVENTS not yet delivered to the consumer.
pub const LAG_PENDING: &str = "lag_pending_messages";
/// Gauge: messages delivered and not yet acknowledged.
pub const LAG_ACK_PENDING: &str = "lag_ack_pending_messages";
/// Gauge: messages in the dead-letter stream.
pub const DEAD_LETTER_DEPTH: &str = "dead_letter_depth_messages";
/// Counter: acknowledged messages purged from EYE_EVENTS to make room.
pub const STREAM_TRIMMED: &str = "stream_trimmed_messages";
/// Gauge: unix time of the last successful INSERT.
pub const LAST_INSERT: &str = "last_insert_timestamp_seconds";

/// Label of [`INSERT_DURATION`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    /// `events` or `event_errors`.
    pub table: &'static str,
}

/// Labels of [`REJECTS`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// Who rejected the event.
    pub source: &'static str,
    /// The error code.
    pub code: String,
}

/// Label of [`DEAD_LETTERS`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// Why the message was parked.
    pub code: &'static str,
}

/// Label of [`INSERT_FAILURES`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabel {
    /// `unavailable` (kept and retried) or `refused` (isolated row by row).
    pub kind: &'static str,
}

/// Label of the lag gauges: which durable consumer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabel {
    /// The durable consumer's name.
    pub consumer: String,
}

/// Every metric of the consumer; cheap to clone (the metrics are shared).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// See [`BATCH_SIZE`].
    pub batch_size: Histogram,
    /// See [`INSERT_DURATION`].
    pub insert_duration: Family<TableLabel, Histogram>,
    /// See [`EVENTS_STORED`].
    pub events_stored: Counter,
    /// See [`REJECTS`].
    pub rejects: Family<RejectLabels, Counter>,
    /// See [`REDELIVERIES`].
    pub redeliveries: Counter,
    /// See [`DEAD_LETTERS`].
    pub dead_letters: Family<CodeLabel, Counter>,
    /// See [`INSERT_FAILURES`].
    pub insert_failures: Family<FailureLabel, Counter>,
    /// See [`LAG_PENDING`].
    pub lag_pending: Family<ConsumerLabel, Gauge>,
    /// See [`LAG_ACK_PENDING`].
    pub lag_ack_pending: Family<ConsumerLabel, Gauge>,
    /// See [`DEAD_LETTER_DEPTH`].
    pub dead_letter_depth: Gauge,
    /// See [`STREAM_TRIMMED`].
    pub stream_trimmed: Counter,
    /// See [`LAST_INSERT`].
    pub last_insert: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            // 1, 2, 4, ... 32768 messages.
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            // 1 ms, 2 ms, ... ~33 s.
            insert_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            events_stored: Counter::default(),
            rejects: Family::default(),
            redeliveries: Counter::default(),
            dead_letters: Family::default(),
            insert_failures: Family::default(),
            lag_pending: Family::default(),
            lag_ack_pending: Family::default(),
            dead_letter_depth: Gauge::default(),
            stream_trimmed: Counter::default(),
            last_insert: Gauge::default(),
        };
        registry.register(
            BATCH_SIZE,
            "Messages per processed batch",
            metrics.batch_size.clone(),
        );
        registry.register(
            INSERT_DURATION,
            "Seconds one INSERT took, by table",
            metrics.insert_duration.clone(),
        );
        registry.register(
            EVENTS_STORED,
            "Rows inserted into events (redelivered copies included)",
            metrics.events_stored.clone(),
        );
        registry.register(
            REJECTS,
            "Rejects stored in event_errors, by source and code",
            metrics.rejects.clone(),
        );
        registry.register(
            REDELIVERIES,
            "Messages delivered more than once",
            metrics.redeliveries.clone(),
        );
        registry.register(
            DEAD_LETTERS,
            "Messages parked on the dead-letter subject, by code",
            metrics.dead_letters.clone(),
        );
        registry.register(
            INSERT_FAILURES,
            "Failed INSERTs: unavailable (kept and retried) or refused (isolated row by row)",
            metrics.insert_failures.clone(),
        );
        registry.register(
            LAG_PENDING,
            "Messages in the stream not yet delivered to the durable consumer",
            metrics.lag_pending.clone(),
        );
        registry.register(
            LAG_ACK_PENDING,
            "Messages delivered to the durable consumer and not yet acknowledged",
            metrics.lag_ack_pending.clone(),
        );
        registry.register(
            DEAD_LETTER_DEPTH,
            "Messages in the dead-letter stream",
            metrics.dead_letter_depth.clone(),
        );
        registry.register(
            STREAM_TRIMMED,
            "Acknowledged messages purged from EYE_EVENTS to make room (--stream-trim-above)",
            metrics.stream_trimmed.clone(),
        );
        registry.register(
            LAST_INSERT,
            "Unix time of the last successful INSERT",
            metrics.last_insert.clone(),
        );
        metrics
    }
}
