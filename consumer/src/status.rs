//! What the consumer knows about the data in its care, shared by the pipeline,
//! the lag monitor, `/readyz` (through [`PipelineReady`]) and `GET /status`.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use eye_contract::Timestamp;
use eye_server_kit::ops::ReadinessCheck;
use futures::future::BoxFuture;
use serde::Serialize;

/// The `/status` answer (and the state behind it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Whether the schema is up to date; until then nothing is consumed.
    pub schema_ready: bool,
    /// The schema version (latest migration) this instance checked or applied.
    pub schema_version: Option<u32>,
    /// Why the schema is not up to date yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_error: Option<String>,
    /// Whether the streams and durable consumers are set up; until then
    /// nothing is consumed.
    pub jetstream_ready: bool,
    /// Why they are not set up yet (the last attempt's error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jetstream_error: Option<String>,
    /// Lag of the events consumer, from the last poll.
    pub events: Option<Lag>,
    /// Lag of the gateway rejects consumer, from the last poll.
    pub rejects: Option<Lag>,
    /// Messages in the dead-letter stream, from the last poll.
    pub dead_letter_depth: Option<u64>,
    /// Why the last poll failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_error: Option<String>,
    /// When the last poll succeeded (RFC 3339).
    pub polled_at: Option<String>,
    /// When this instance last had an INSERT confirmed (RFC 3339).
    pub last_insert_at: Option<String>,
    /// The current INSERT failure, cleared by the next success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insert_error: Option<String>,
    /// Rows this instance inserted into `events` since it started.
    pub events_stored: u64,
    /// Rows this instance inserted into `event_errors` since it started.
    pub rejects_stored: u64,
    /// Messages this instance dead-lettered since it started.
    pub dead_lettered: u64,
}

/// One durable consumer's backlog.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lag {
    /// Messages not yet delivered.
    pub pending: u64,
    /// Messages delivered and not yet acknowledged.
    pub ack_pending: u64,
    /// Messages redelivered so far (server count).
    pub redelivered: u64,
    /// Age in seconds of the oldest message not yet acknowledged, when known.
    pub oldest_pending_age_seconds: Option<f64>,
}

impl Lag {
    /// Messages waiting for this consumer in total.
    pub fn total(&self) -> u64 {
        self.pending.saturating_add(self.ack_pending)
    }
}

/// The shared state.
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<Snapshot>,
}

impl Status {
    /// A fresh state, shared.
    pub fn new() -> Arc<Status> {
        Arc::new(Status::default())
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// Records the outcome of a migration attempt: the schema version, or why not.
    pub fn set_schema(&self, outcome: Result<u32, String>) {
        let mut s = self.lock();
        s.schema_ready = outcome.is_ok();
        match outcome {
            Ok(version) => {
                s.schema_version = Some(version);
                s.schema_error = None;
            }
            Err(error) => s.schema_error = Some(error),
        }
    }

    /// Records the outcome of an attempt to set up the streams and durable
    /// consumers: done, or why not.
    pub fn set_jetstream(&self, outcome: Result<(), String>) {
        let mut s = self.lock();
        s.jetstream_ready = outcome.is_ok();
        s.jetstream_error = outcome.err();
    }

    /// Records a confirmed INSERT of `events` and `rejects` rows.
    pub fn inserted(&self, events: u64, rejects: u64) {
        let mut s = self.lock();
        s.last_insert_at = Some(Timestamp::now().to_rfc3339());
        s.insert_error = None;
        s.events_stored += events;
        s.rejects_stored += rejects;
    }

    /// Records a failing INSERT.
    pub fn insert_failed(&self, error: String) {
        self.lock().insert_error = Some(error);
    }

    /// Records a dead-lettered message.
    pub fn dead_lettered(&self) {
        self.lock().dead_lettered += 1;
    }

    /// Records a successful poll of JetStream.
    pub fn polled(&self, events: Lag, rejects: Option<Lag>, dead_letter_depth: Option<u64>) {
        let mut s = self.lock();
        s.events = Some(events);
        s.rejects = rejects;
        s.dead_letter_depth = dead_letter_depth;
        s.poll_error = None;
        s.polled_at = Some(Timestamp::now().to_rfc3339());
    }

    /// Records a failed poll of JetStream.
    pub fn poll_failed(&self, error: String) {
        self.lock().poll_error = Some(error);
    }
}

/// Readiness of the pipeline itself: schema migrated, inserts not failing,
/// and the backlog under `max_lag`.
pub struct PipelineReady {
    /// The shared state.
    pub status: Arc<Status>,
    /// The largest acceptable backlog (pending + ack-pending) on EYE_EVENTS.
    pub max_lag: u64,
}

impl ReadinessCheck for PipelineReady {
    fn name(&self) -> &'static str {
        "pipeline"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let s = self.status.snapshot();
        let max_lag = self.max_lag;
        Box::pin(async move {
            if !s.schema_ready {
                let why = s.schema_error.as_deref().unwrap_or("not applied yet");
                return Err(format!("schema migrations pending: {why}"));
            }
            if !s.jetstream_ready {
                let why = s.jetstream_error.as_deref().unwrap_or("not done yet");
                return Err(format!("JetStream set-up pending: {why}"));
            }
            if let Some(error) = s.insert_error {
                return Err(format!("inserts into ClickHouse are failing: {error}"));
            }
            if let Some(lag) = s.events.as_ref().filter(|lag| lag.total() > max_lag) {
                return Err(format!(
                    "{} messages wait in EYE_EVENTS, more than --max-lag {max_lag}",
                    lag.total()
                ));
            }
            Ok(())
        })
    }
}

/// `GET /status`.
pub fn router(status: Arc<Status>) -> Router {
    Router::new()
        .route("/status", get(status_handler))
        .with_state(status)
}

async fn status_handler(State(status): State<Arc<Status>>) -> Json<Snapshot> {
    Json(status.snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_only_with_schema_streams_working_inserts_and_small_lag() {
        let status = Status::new();
        let check = PipelineReady {
            status: status.clone(),
            max_lag: 10,
        };
        assert!(check.check().await.unwrap_err().contains("migrations"));
        status.set_schema(Ok(3));
        assert_eq!(
            check.check().await,
            Err("JetStream set-up pending: not done yet".to_owned())
        );
        status.set_jetstream(Err("insufficient storage resources available".into()));
        assert!(check
            .check()
            .await
            .unwrap_err()
            .contains("insufficient storage"));
        status.set_jetstream(Ok(()));
        assert_eq!(check.check().await, Ok(()));
        status.insert_failed("connection refused".into());
        assert!(check
            .check()
            .await
            .unwrap_err()
            .contains("connection refused"));
        status.inserted(1, 0);
        let lag = Lag {
            pending: 8,
            ack_pending: 3,
            ..Lag::default()
        };
        status.polled(lag, None, Some(0));
        assert!(check.check().await.unwrap_err().contains("11 messages"));
    }
}
