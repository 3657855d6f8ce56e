//! The JetStream streams of The Eye and their settings, in one place so the gateway
//! and the consumer create them identically.
//!
//! - `EYE_EVENTS` (`eye.events.>`): accepted events. File storage, a duplicate window
//!   keyed by `Nats-Msg-Id`, and age and byte limits with *discard new*: a full stream
//!   refuses publishers (who then answer "retry later") instead of dropping stored data.
//!   Limits retention: messages stay until they age out, acked or not. So the byte
//!   limit must hold `--stream-max-age` of traffic, or the stream fills at steady
//!   state and refuses publishers until old messages age out (the fault suite's
//!   stream-full case; docs/reliability.md says why work-queue retention is not
//!   used on nats-server 2.9).
//! - `EYE_REJECTS` (`eye.rejects.*`): events the gateway rejected, for `event_errors`.
//! - `EYE_DEADLETTER` (`eye.deadletter.>`): messages the consumer could not store.

use std::time::Duration;

use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::{self, stream, ErrorCode};
use eye_contract::subject::{DEADLETTER_SUBJECTS, REJECTS_SUBJECTS};
use eye_contract::{EVENTS_STREAM, EVENTS_SUBJECTS};

/// Name of the stream of gateway rejects.
pub const REJECTS_STREAM: &str = "EYE_REJECTS";
/// Name of the dead-letter stream.
pub const DEADLETTER_STREAM: &str = "EYE_DEADLETTER";

/// Limits of the streams, from flags and environment variables.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// How long events are kept in the stream (e.g. `7d`, `12h`).
    #[arg(long = "stream-max-age", env = "EYE_STREAM_MAX_AGE", default_value = "7d", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub max_age: Duration,
    /// Bytes the events stream may hold before publishers are refused.
    #[arg(long = "stream-max-bytes", env = "EYE_STREAM_MAX_BYTES", default_value_t = 8 * 1024 * 1024 * 1024, value_name = "BYTES")]
    pub max_bytes: i64,
    /// Window in which a repeated event id is recognised as a duplicate (e.g. `2m`).
    #[arg(long = "stream-duplicate-window", env = "EYE_STREAM_DUPLICATE_WINDOW", default_value = "2m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duplicate_window: Duration,
    /// Stream replicas (3 on a NATS cluster, 1 on a single server).
    #[arg(
        long = "stream-replicas",
        env = "EYE_STREAM_REPLICAS",
        default_value_t = 1,
        value_name = "N"
    )]
    pub replicas: usize,
}

impl StreamArgs {
    /// The configuration of `EYE_EVENTS`.
    pub fn events_config(&self) -> stream::Config {
        stream::Config {
            name: EVENTS_STREAM.to_string(),
            subjects: vec![EVENTS_SUBJECTS.to_string()],
            storage: stream::StorageType::File,
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            discard: stream::DiscardPolicy::New,
            retention: stream::RetentionPolicy::Limits,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// The configuration of a side stream (rejects, dead letters): same age and
    /// replicas, a tenth of the bytes, and old messages make room for new ones,
    /// since a flood of rejects must never stop accepted events.
    fn side_config(&self, name: &str, subjects: &str) -> stream::Config {
        stream::Config {
            name: name.to_string(),
            subjects: vec![subjects.to_string()],
            storage: stream::StorageType::File,
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            max_bytes: (self.max_bytes / 10).max(1024 * 1024),
            discard: stream::DiscardPolicy::Old,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// All three stream configurations.
    pub fn all_configs(&self) -> [stream::Config; 3] {
        [
            self.events_config(),
            self.side_config(REJECTS_STREAM, REJECTS_SUBJECTS),
            self.side_config(DEADLETTER_STREAM, DEADLETTER_SUBJECTS),
        ]
    }
}

/// A stream could not be created or updated.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot create or update JetStream stream {stream}: {source}{}",
    storage_hint(self)
)]
pub struct StreamError {
    /// The stream's name.
    pub stream: String,
    /// The byte limit asked for.
    pub max_bytes: i64,
    /// The server's answer.
    #[source]
    pub source: jetstream::context::CreateStreamError,
}

impl StreamError {
    /// True when the server has no room to reserve the stream's byte limit.
    pub fn is_out_of_storage(&self) -> bool {
        matches!(
            self.source.kind(),
            CreateStreamErrorKind::JetStream(error)
                if error.error_code() == ErrorCode::STORAGE_RESOURCES_EXCEEDED
        )
    }
}

/// What to do when JetStream cannot reserve the byte limit: the most likely
/// cause is its default storage limit, 75% of the disk space free when the
/// server started.
fn storage_hint(error: &StreamError) -> String {
    if !error.is_out_of_storage() {
        return String::new();
    }
    format!(
        " (JetStream reserves a file stream's whole byte limit, here {} bytes, when it \
         creates it; by default it may use 75% of the disk space free when nats-server \
         started: free disk space, raise max_file_store in the server's jetstream block, \
         or lower --stream-max-bytes / EYE_STREAM_MAX_BYTES, of which the side streams \
         take a tenth each)",
        error.max_bytes
    )
}

/// Creates the streams, or updates them to `args` when they exist: safe to call from
/// every instance at every start.
///
/// NATS cannot change the retention policy of an existing stream. A stream created
/// with another retention (`EYE_EVENTS` made by a version before work-queue retention)
/// (for instance a work queue made by a development build) is updated with its own
/// retention kept, and a warning says how to move it.
pub async fn create_or_update_streams(
    js: &jetstream::Context,
    args: &StreamArgs,
) -> Result<(), StreamError> {
    for config in args.all_configs() {
        let (stream, max_bytes) = (config.name.clone(), config.max_bytes);
        let Err(source) = js.create_or_update_stream(config.clone()).await else {
            continue;
        };
        let existing = match js.get_stream(&stream).await {
            Ok(mut existing) => existing.info().await.ok().map(|i| i.config.retention),
            Err(_) => None,
        };
        match existing {
            Some(retention) if retention != config.retention => {
                tracing::warn!(
                    %stream,
                    existing = ?retention,
                    wanted = ?config.retention,
                    "the stream keeps its retention policy (NATS cannot change it in place); \
                     to move it, stop the gateways, let the consumer drain the stream, \
                     delete the stream and start again"
                );
                js.update_stream(stream::Config {
                    retention,
                    ..config
                })
                .await
                .map_err(|source| StreamError {
                    stream,
                    max_bytes,
                    source,
                })?;
            }
            _ => {
                return Err(StreamError {
                    stream,
                    max_bytes,
                    source,
                })
            }
        }
    }
    Ok(())
}
