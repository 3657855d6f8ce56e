//! Publishing to JetStream: accepted events durably, rejects on the side.
//!
//! Events: every event of a request is sent first and the acknowledgements are
//! awaited together afterwards (pipelined: one round trip per request, not per
//! event), all under one deadline. Each event carries `Nats-Msg-Id` =
//! [`dedup_id`], so a resend inside the duplicate window is stored once.
//! In-flight events are bounded over all requests; past the bound a request is
//! refused (`overloaded`) rather than queued.
//!
//! Rejects: published in the background. Recording a reject must never fail or
//! delay the answer for the accepted events, so a reject that cannot be
//! published (NATS unreachable, a NATS cluster electing the rejects stream's
//! leader) is tried again with backoff for [`REJECT_RETRY_FOR`], its reject id
//! as `Nats-Msg-Id` so a retry is stored once; then it is counted and logged.
//! At most [`MAX_REJECTS_RETRYING`] wait for a retry at once (memory is bounded
//! when NATS stays away); past that, a failed reject is given up at once.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, ErrorCode};
use async_nats::HeaderMap;
use eye_contract::subject::rejects_subject;
use eye_contract::{dedup_id, events_subject, headers, Event, Reject, RetryCode};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::streams::Streams;

/// How long a reject that could not be published is tried again.
pub const REJECT_RETRY_FOR: Duration = Duration::from_secs(30);
/// Most rejects waiting for a retry at once, over all requests.
pub const MAX_REJECTS_RETRYING: usize = 10_000;
/// First pause before a reject is tried again; doubled up to [`REJECT_RETRY_MAX_PAUSE`].
const REJECT_RETRY_FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between two tries of a reject.
const REJECT_RETRY_MAX_PAUSE: Duration = Duration::from_secs(2);

/// Publishes events and rejects; shared by all requests.
#[derive(Debug)]
pub struct Publisher {
    nats: async_nats::Client,
    js: jetstream::Context,
    streams: Arc<Streams>,
    inflight: Arc<Semaphore>,
    timeout: Duration,
    metrics: Metrics,
    background: TaskTracker,
    /// Rejects waiting for a retry (see [`MAX_REJECTS_RETRYING`]).
    rejects_retrying: AtomicUsize,
}

/// How a [`Publisher`] is set up.
#[derive(Debug)]
pub struct PublisherConfig {
    /// The connection.
    pub nats: async_nats::Client,
    /// Whether the streams exist (see `streams.rs`).
    pub streams: Arc<Streams>,
    /// Most events in flight at once.
    pub max_inflight: usize,
    /// How long a request waits for its acknowledgements.
    pub timeout: Duration,
    /// Where to count.
    pub metrics: Metrics,
}

impl Publisher {
    /// A publisher over `config.nats`.
    pub fn new(config: PublisherConfig) -> Publisher {
        let js = jetstream::ContextBuilder::new()
            .timeout(config.timeout)
            .ack_timeout(config.timeout)
            // Our own semaphore is the bound; the client's only has to not be lower.
            .max_ack_inflight(config.max_inflight)
            .build(config.nats.clone());
        Publisher {
            nats: config.nats,
            js,
            streams: config.streams,
            inflight: Arc::new(Semaphore::new(config.max_inflight)),
            timeout: config.timeout,
            metrics: config.metrics,
            background: TaskTracker::new(),
            rejects_retrying: AtomicUsize::new(0),
        }
    }

    /// The JetStream context (for creating the streams).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Whether publishing can work now: connected, and the streams exist.
    pub fn available(&self) -> bool {
        self.streams.ready() && self.nats.connection_state() == State::Connected
    }

    /// Publishes `events` of `client` and waits for each acknowledgement; one
    /// result per event, in order. Never takes longer than the publish timeout.
    pub async fn publish_events(
        &self,
        client: &str,
        events: &[&Event],
    ) -> Vec<Result<(), RetryCode>> {
        let n = events.len();
        if n == 0 {
            return Vec::new();
        }
        // Not connected: answer at once instead of waiting out the timeout.
        if !self.available() {
            return vec![Err(RetryCode::BrokerUnavailable); n];
        }
        let Some(permits) = u32::try_from(n)
            .ok()
            .and_then(|n| Arc::clone(&self.inflight).try_acquire_many_owned(n).ok())
        else {
            return vec![Err(RetryCode::Overloaded); n];
        };
        // Released on drop, so a request abandoned by its client mid-publish
        // (its future dropped) gives its capacity back too.
        let _inflight = Inflight::new(permits, &self.metrics.inflight, n);
        let started = Instant::now();
        let deadline = started + self.timeout;

        let mut sent = Vec::with_capacity(n);
        for event in events {
            let subject = events_subject(client, &event.category);
            let message = match serde_json::to_vec(event) {
                Ok(payload) => event_message(client, event, payload),
                Err(error) => {
                    tracing::error!(%error, "cannot serialize a validated event");
                    sent.push(Err(RetryCode::BrokerUnavailable));
                    continue;
                }
            };
            sent.push(
                match timeout_at(deadline, self.js.send_publish(subject, message)).await {
                    Ok(Ok(ack)) => Ok(ack),
                    Ok(Err(error)) => Err(self.classify(&error)),
                    Err(_elapsed) => Err(RetryCode::PublishTimeout),
                },
            );
        }
        let results = futures::future::join_all(sent.into_iter().map(|sent| async move {
            let ack = sent?;
            match timeout_at(deadline, ack.into_future()).await {
                Ok(Ok(_ack)) => Ok(()),
                Ok(Err(error)) => Err(self.classify(&error)),
                Err(_elapsed) => Err(RetryCode::PublishTimeout),
            }
        }))
        .await;

        self.metrics
            .publish_duration
            .observe(started.elapsed().as_secs_f64());
        if let Some(code) = results.iter().find_map(|r| r.err()) {
            tracing::warn!(%client, events = n, %code, "JetStream did not take every event");
        }
        results
    }

    /// Publishes `rejects` of `client` in the background and returns at once.
    pub fn publish_rejects(self: &Arc<Self>, client: &str, rejects: Vec<Reject>) {
        if rejects.is_empty() {
            return;
        }
        let this = Arc::clone(self);
        let subject = rejects_subject(client);
        self.background.spawn(async move {
            let n = rejects.len();
            let failed = this.record_rejects(&subject, rejects).await;
            if failed > 0 {
                this.metrics
                    .reject_publish_failures
                    .inc_by(u64::try_from(failed).unwrap_or(u64::MAX));
                tracing::warn!(rejects = n, failed, "could not record every reject");
            }
        });
    }

    /// Publishes `rejects`, trying the failed ones again with backoff for
    /// [`REJECT_RETRY_FOR`] (not once shutting down); how many were given up.
    async fn record_rejects(&self, subject: &str, rejects: Vec<Reject>) -> usize {
        let give_up_at = Instant::now() + REJECT_RETRY_FOR;
        let mut failed = self.send_rejects(subject, rejects).await;
        if failed.is_empty() {
            return 0;
        }
        // The rejects that failed only get fewer: hold room for all of them.
        let held = failed.len();
        if self.rejects_retrying.fetch_add(held, Ordering::AcqRel) + held > MAX_REJECTS_RETRYING {
            self.rejects_retrying.fetch_sub(held, Ordering::AcqRel);
            return held;
        }
        let mut pause = REJECT_RETRY_FIRST_PAUSE;
        while !failed.is_empty()
            && !self.background.is_closed()
            && Instant::now() + pause < give_up_at
        {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(REJECT_RETRY_MAX_PAUSE);
            failed = self.send_rejects(subject, failed).await;
        }
        self.rejects_retrying.fetch_sub(held, Ordering::AcqRel);
        failed.len()
    }

    /// Sends rejects and waits for their acknowledgements; the ones that failed.
    async fn send_rejects(&self, subject: &str, rejects: Vec<Reject>) -> Vec<Reject> {
        if !self.available() {
            return rejects;
        }
        let deadline = Instant::now() + self.timeout;
        let mut sent = Vec::with_capacity(rejects.len());
        let mut failed = Vec::new();
        for reject in rejects {
            let Ok(payload) = serde_json::to_vec(&reject) else {
                // Cannot happen (a Reject is plain data); never retried.
                tracing::warn!(reject_id = %reject.reject_id, "a reject could not be serialized");
                self.metrics.reject_publish_failures.inc();
                continue;
            };
            let message = PublishMessage::build()
                .payload(payload.into())
                .message_id(&reject.reject_id);
            match timeout_at(deadline, self.js.send_publish(subject.to_owned(), message)).await {
                Ok(Ok(ack)) => sent.push((reject, ack)),
                Ok(Err(error)) => {
                    self.notice_missing_stream(&error);
                    failed.push(reject);
                }
                Err(_) => failed.push(reject),
            }
        }
        let (rejects, acks): (Vec<Reject>, Vec<_>) = sent.into_iter().unzip();
        let results = futures::future::join_all(
            acks.into_iter()
                .map(|ack| timeout_at(deadline, ack.into_future())),
        )
        .await;
        for (reject, result) in rejects.into_iter().zip(results) {
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    self.notice_missing_stream(&error);
                    failed.push(reject);
                }
                Err(_) => failed.push(reject),
            }
        }
        failed
    }

    /// A publish that found no stream has the streams checked (see `streams.rs`).
    fn notice_missing_stream(&self, error: &PublishError) {
        if error.kind() == PublishErrorKind::StreamNotFound {
            self.streams.lost();
        }
    }

    /// The retry code of a failed publish; a missing stream is set up again.
    fn classify(&self, error: &PublishError) -> RetryCode {
        match error.kind() {
            PublishErrorKind::TimedOut => RetryCode::PublishTimeout,
            PublishErrorKind::MaxAckPending => RetryCode::Overloaded,
            PublishErrorKind::Other if is_stream_full(error) => RetryCode::StreamFull,
            PublishErrorKind::StreamNotFound => {
                self.notice_missing_stream(error);
                RetryCode::BrokerUnavailable
            }
            _ => RetryCode::BrokerUnavailable,
        }
    }

    /// Waits (at most the publish timeout) for background reject publishes.
    pub async fn drain(&self) {
        self.background.close();
        if tokio::time::timeout(self.timeout, self.background.wait())
            .await
            .is_err()
        {
            tracing::warn!("reject publishes still pending at shutdown");
        }
    }
}

/// Events in flight: semaphore permits and the gauge, both given back on drop.
struct Inflight {
    _permits: OwnedSemaphorePermit,
    gauge: Gauge,
    n: i64,
}

impl Inflight {
    fn new(permits: OwnedSemaphorePermit, gauge: &Gauge, n: usize) -> Inflight {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        gauge.inc_by(n);
        Inflight {
            _permits: permits,
            gauge: gauge.clone(),
            n,
        }
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.gauge.dec_by(self.n);
    }
}

/// The JetStream message of an accepted event: the normalized event as JSON,
/// with the event id, the client id and the deduplication id as headers.
fn event_message(client: &str, event: &Event, payload: Vec<u8>) -> PublishMessage {
    let mut headers = HeaderMap::new();
    headers.insert(headers::EVENT_ID, event.event_id.as_str());
    headers.insert(headers::CLIENT_ID, client);
    PublishMessage::build()
        .payload(payload.into())
        .headers(headers)
        .message_id(dedup_id(client, &event.event_id))
}

/// Whether JetStream refused the message because the stream reached a limit
/// (with discard-new, a full stream refuses instead of dropping old data).
fn is_stream_full(error: &PublishError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .is_some_and(|e| {
            e.error_code() == ErrorCode::STREAM_STORE_FAILED || e.to_string().contains("maximum")
        })
}
