//! The consumer's configuration: flags with environment-variable fallbacks and
//! documented defaults (`eye-consumer --help` lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use eye_contract::{Limits, TimeRules};
use eye_server_kit::args::{ClickHouseArgs, LogArgs, NatsArgs};
use eye_server_kit::jetstream::StreamArgs;
use eye_server_kit::service::ServiceConfig;

/// Bytes the normalized form of an event may exceed the gateway's limit by
/// (the added `"event_id":"<uuid>"` is about 50).
const NORMALIZATION_SLACK: usize = 4096;

/// Everything `eye-consumer` can be told.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address of /healthz, /readyz, /metrics and /status.
    #[arg(long, env = "EYE_CONSUMER_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// Directory of the JSON Schemas, one file per event category (read again on SIGHUP).
    #[arg(long, env = "EYE_SCHEMAS_DIR", default_value = "schemas")]
    pub schemas_dir: PathBuf,
    /// Seconds a batch in flight may take to finish after a shutdown signal.
    #[arg(long, env = "EYE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// How the consumer pulls, stores and retries.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Limits of the JetStream streams, created or updated at start-up like the
    /// gateway does (the consumer may start first).
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Connection to NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Connection to ClickHouse.
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The consumer loop's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
    /// Name of the durable JetStream consumer on EYE_EVENTS, shared by every
    /// instance (work is split between them). Gateway rejects are read by the
    /// durable consumer `<name>-rejects` on EYE_REJECTS.
    #[arg(long, env = "EYE_CONSUMER_NAME", default_value = "eye-consumer")]
    pub consumer_name: String,
    /// Most messages fetched, and inserted, as one batch. ClickHouse prefers
    /// few large inserts: 10,000 rows cost it about a third of the CPU per row
    /// of 1,000 (docs/performance.md).
    #[arg(long, env = "EYE_BATCH_SIZE", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Longest wait for a batch to fill; a partial batch is processed after it.
    #[arg(long, env = "EYE_BATCH_WAIT", default_value = "200ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub batch_wait: Duration,
    /// Deliveries of a message before it is dead-lettered when ClickHouse keeps
    /// refusing it (an unavailable ClickHouse never counts against it). Enforced
    /// by the consumer: JetStream itself redelivers without limit, so a message
    /// is always either stored or dead-lettered.
    #[arg(long, env = "EYE_MAX_DELIVER", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    pub max_deliver: i64,
    /// How long JetStream waits for an ack before redelivering. Must exceed
    /// --insert-timeout; while an insert is retried the consumer keeps its
    /// messages with progress acks, so this only matters after a crash.
    #[arg(long, env = "EYE_ACK_WAIT", default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ack_wait: Duration,
    /// Most messages delivered and not yet acked, over all instances: at
    /// least one batch per instance (docs/reliability.md).
    #[arg(long, env = "EYE_MAX_ACK_PENDING", default_value_t = 100_000)]
    pub max_ack_pending: i64,
    /// Longest one INSERT may take before it counts as failed.
    #[arg(long, env = "EYE_INSERT_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub insert_timeout: Duration,
    /// First pause before retrying a failed insert; doubled on each failure.
    #[arg(long, env = "EYE_RETRY_MIN", default_value = "100ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retry_min: Duration,
    /// Longest pause between insert retries.
    #[arg(long, env = "EYE_RETRY_MAX", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retry_max: Duration,
    /// /readyz fails when more messages than this wait for the consumer
    /// (pending plus ack-pending on EYE_EVENTS).
    #[arg(long, env = "EYE_MAX_LAG", default_value_t = 1_000_000)]
    pub max_lag: u64,
    /// How often consumer lag and dead-letter depth are read from JetStream.
    #[arg(long, env = "EYE_LAG_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lag_poll_interval: Duration,
    /// Once EYE_EVENTS holds more than this percentage of its byte limit,
    /// events every consumer of the stream has acknowledged (they are stored)
    /// are purged from it, checked every --lag-poll-interval. A stream that
    /// filled while the consumer was behind then accepts events again as soon
    /// as the consumer has caught up. 100 keeps acknowledged events until
    /// they age out (--stream-max-age).
    #[arg(long, env = "EYE_STREAM_TRIM_ABOVE", default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=100), value_name = "PERCENT")]
    pub stream_trim_above: u8,
    /// Bytes of an event's raw body kept with its reject in event_errors.
    #[arg(long, env = "EYE_REJECT_RAW_CAP", default_value_t = eye_contract::reject::DEFAULT_RAW_CAP, value_name = "BYTES")]
    pub reject_raw_cap: usize,
    /// Largest event the gateway accepts, in bytes (same option as the
    /// gateway's). The consumer allows 4 KiB more: the gateway publishes the
    /// normalized event, with its event_id added, so an event accepted near
    /// the limit must still pass here.
    #[arg(long, env = "EYE_MAX_EVENT_BYTES", default_value_t = eye_contract::validator::DEFAULT_MAX_EVENT_BYTES, value_name = "BYTES")]
    pub max_event_bytes: usize,
    /// Deepest nesting of objects and arrays in an event (same option as the gateway's).
    #[arg(long, env = "EYE_MAX_JSON_DEPTH", default_value_t = eye_contract::validator::DEFAULT_MAX_DEPTH, value_name = "N")]
    pub max_json_depth: usize,
    /// How far ahead of the time JetStream stored an event its timestamp may
    /// be (same option as the gateway's).
    #[arg(long, env = "EYE_MAX_CLOCK_SKEW", default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_clock_skew: Duration,
    /// Oldest accepted event timestamp, as an age (e.g. `30d`); unset means any age.
    #[arg(long, env = "EYE_MAX_EVENT_AGE", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_event_age: Option<Duration>,
    /// Fault injection for tests: store batches but never ack them, as if the
    /// process died between the insert and the ack. Never set it in production.
    #[arg(long, env = "EYE_FAULT_SKIP_ACKS", hide = true)]
    pub fault_skip_acks: bool,
}

/// A combination of settings that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The ack wait must outlast an insert, or messages would be redelivered
    /// to another instance while this one is still storing them.
    #[error("--ack-wait / EYE_ACK_WAIT ({ack_wait:?}) must be longer than --insert-timeout / EYE_INSERT_TIMEOUT ({insert_timeout:?})")]
    AckWait {
        /// The configured ack wait.
        ack_wait: Duration,
        /// The configured insert timeout.
        insert_timeout: Duration,
    },
    /// The consumer name is not a valid JetStream durable name.
    #[error("--consumer-name / EYE_CONSUMER_NAME {0:?} must be 1-200 characters of A-Z, a-z, 0-9, '-' and '_'")]
    ConsumerName(String),
    /// The database name would have to be quoted.
    #[error(
        "--clickhouse-database / EYE_CLICKHOUSE_DATABASE {0:?} must match [A-Za-z_][A-Za-z0-9_]*"
    )]
    Database(String),
    /// Backoff bounds out of order.
    #[error(
        "--retry-min / EYE_RETRY_MIN must be positive and at most --retry-max / EYE_RETRY_MAX"
    )]
    Retry,
    /// A batch larger than the ack-pending limit could never be delivered whole.
    #[error("--batch-size / EYE_BATCH_SIZE ({batch_size}) must be at most --max-ack-pending / EYE_MAX_ACK_PENDING ({max_ack_pending})")]
    BatchOverAckPending {
        /// The configured batch size.
        batch_size: u32,
        /// The configured ack-pending limit.
        max_ack_pending: i64,
    },
}

impl Config {
    /// Checks the settings that depend on each other.
    pub fn check(&self) -> Result<(), ConfigError> {
        let p = &self.pipeline;
        if p.ack_wait <= p.insert_timeout {
            return Err(ConfigError::AckWait {
                ack_wait: p.ack_wait,
                insert_timeout: p.insert_timeout,
            });
        }
        let name_ok = !p.consumer_name.is_empty()
            && p.consumer_name.len() <= 200
            && p.consumer_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ConfigError::ConsumerName(p.consumer_name.clone()));
        }
        if !crate::migrations::is_identifier(&self.clickhouse.database) {
            return Err(ConfigError::Database(self.clickhouse.database.clone()));
        }
        if p.retry_min.is_zero() || p.retry_min > p.retry_max {
            return Err(ConfigError::Retry);
        }
        if i64::from(p.batch_size) > p.max_ack_pending {
            return Err(ConfigError::BatchOverAckPending {
                batch_size: p.batch_size,
                max_ack_pending: p.max_ack_pending,
            });
        }
        Ok(())
    }
}

impl PipelineArgs {
    /// The time rules events are validated with.
    pub fn time_rules(&self) -> TimeRules {
        TimeRules {
            max_future_skew: self.max_clock_skew,
            max_age: self.max_event_age,
        }
    }

    /// The size limits events are validated with.
    pub fn limits(&self) -> Limits {
        Limits {
            max_event_bytes: self.max_event_bytes.saturating_add(NORMALIZATION_SLACK),
            max_depth: self.max_json_depth,
        }
    }

    /// The durable consumer on EYE_REJECTS.
    pub fn rejects_consumer_name(&self) -> String {
        format!("{}-rejects", self.consumer_name)
    }
}

impl ServiceConfig for Config {
    const LISTEN_OPTION: &'static str = "--listen / EYE_CONSUMER_LISTEN";
    fn listen(&self) -> SocketAddr {
        self.listen
    }
    fn log(&self) -> &LogArgs {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        let matches = <Wrapper as clap::CommandFactory>::command()
            .no_binary_name(true)
            .try_get_matches_from(args)
            .expect("arguments parse");
        Wrapper::from_arg_matches(&matches).expect("config").config
    }

    #[test]
    fn command_line_is_well_formed() {
        eye_server_kit::service::command::<super::Config>(crate::BINARY, crate::ABOUT)
            .debug_assert();
    }

    #[test]
    fn defaults_are_consistent() {
        let config = parse(&[]);
        config.check().expect("defaults pass the checks");
        assert_eq!(config.pipeline.batch_size, 10_000);
        assert_eq!(config.pipeline.batch_wait, Duration::from_millis(200));
        assert_eq!(
            config.pipeline.rejects_consumer_name(),
            "eye-consumer-rejects"
        );
    }

    #[test]
    fn ack_wait_must_outlast_an_insert() {
        let config = parse(&["--ack-wait", "5s", "--insert-timeout", "10s"]);
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("--ack-wait"), "{error}");
    }

    #[test]
    fn a_batch_must_fit_under_the_ack_pending_limit() {
        let config = parse(&["--batch-size", "5000", "--max-ack-pending", "4999"]);
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("--max-ack-pending"), "{error}");
        assert!(
            parse(&["--batch-size", "5000", "--max-ack-pending", "5000"])
                .check()
                .is_ok()
        );
    }

    #[test]
    fn database_and_consumer_names_are_checked() {
        let config = parse(&["--clickhouse-database", "eye; DROP"]);
        assert!(matches!(config.check(), Err(ConfigError::Database(_))));
        let config = parse(&["--consumer-name", "a.b"]);
        assert!(matches!(config.check(), Err(ConfigError::ConsumerName(_))));
    }
}
