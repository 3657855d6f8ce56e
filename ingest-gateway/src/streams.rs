//! Keeping the JetStream streams in place without making NATS a start-up
//! dependency: the gateway starts, reports "not ready", and keeps trying in the
//! background until the streams exist — and sets them up again whenever a
//! publish finds its stream missing (a NATS server that lost its store, an
//! operator who deleted a stream), so the gateway heals without a restart.
//!
//! "No stream" is what a publish hears both when a stream is gone and while a
//! NATS cluster elects a new stream leader (nothing answers the subject for a
//! few seconds). So a publish that found no stream only asks for a check: the
//! gateway goes "not ready" and sets the streams up again when the server
//! says a stream does not exist, and otherwise stays ready, so publishing
//! resumes the moment a new leader is elected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode};
use eye_server_kit::jetstream::{create_or_update_streams, StreamArgs};
use eye_server_kit::ops::ReadinessCheck;
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// First pause between attempts; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one check of the streams' existence may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a check, so a burst of failing publishes is one check at a time.
const CHECK_PAUSE: Duration = Duration::from_millis(250);

/// Whether the streams are known to exist, and the way to ask for them again.
#[derive(Debug, Default)]
pub struct Streams {
    ready: AtomicBool,
    lost: Notify,
    /// Why the last attempt to set the streams up failed (shown by `/readyz`).
    last_error: Mutex<Option<String>>,
}

impl Streams {
    /// Not ready until [`Streams::keep`] has set the streams up.
    pub fn new() -> Arc<Streams> {
        Arc::new(Streams::default())
    }

    /// Whether the streams exist, as far as we know.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Why the streams are not set up, as far as the last attempt said.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_last_error(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// A publish found no stream for its subject: check whether one is
    /// missing (then not ready until they are set up again).
    pub fn lost(&self) {
        self.lost.notify_one();
    }

    /// Sets the streams up (retrying with backoff), then again after each
    /// [`Streams::lost`], until `shutdown` is cancelled.
    pub async fn keep(
        self: Arc<Self>,
        js: jetstream::Context,
        args: StreamArgs,
        shutdown: CancellationToken,
    ) {
        loop {
            if !self.set_up(&js, &args, &shutdown).await {
                return;
            }
            loop {
                tokio::select! {
                    _ = self.lost.notified() => {}
                    _ = shutdown.cancelled() => return,
                }
                if let Some(stream) = missing_stream(&js, &args).await {
                    self.ready.store(false, Ordering::Release);
                    tracing::warn!(%stream, "a JetStream stream is missing; setting the streams up again");
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(CHECK_PAUSE) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }

    /// Creates or updates the streams until it works (true) or `shutdown` (false).
    async fn set_up(
        &self,
        js: &jetstream::Context,
        args: &StreamArgs,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, create_or_update_streams(js, args));
            match outcome.await {
                Ok(Ok(())) => {
                    self.set_last_error(None);
                    self.ready.store(true, Ordering::Release);
                    tracing::info!(attempt, "JetStream streams are ready");
                    return true;
                }
                Ok(Err(error)) => {
                    tracing::warn!(attempt, %error, "cannot set up the streams yet");
                    self.set_last_error(Some(error.to_string()));
                }
                Err(_) => {
                    tracing::warn!(attempt, "setting up the streams timed out");
                    let took = humantime::format_duration(ATTEMPT_TIMEOUT);
                    self.set_last_error(Some(format!("setting them up took over {took}")));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return false,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// The first of the streams the server says does not exist. A stream that
/// cannot be asked about (no leader during an election, a timeout) counts as
/// present: only the server's "stream not found" makes the gateway set the
/// streams up again.
async fn missing_stream(js: &jetstream::Context, args: &StreamArgs) -> Option<String> {
    for config in args.all_configs() {
        let asked = tokio::time::timeout(CHECK_TIMEOUT, js.get_stream(&config.name)).await;
        match asked {
            Ok(Err(error)) => match error.kind() {
                GetStreamErrorKind::JetStream(error)
                    if error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    return Some(config.name);
                }
                _ => {
                    tracing::debug!(stream = %config.name, %error, "cannot tell whether the stream exists (a leader election?)")
                }
            },
            Ok(Ok(_)) => {}
            Err(_) => {
                tracing::debug!(stream = %config.name, "no answer about the stream in time (a leader election?)")
            }
        }
    }
    None
}

/// Ready once the streams exist.
pub struct StreamsReady(pub Arc<Streams>);

impl ReadinessCheck for StreamsReady {
    fn name(&self) -> &'static str {
        "streams"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let outcome = if self.0.ready() {
            Ok(())
        } else {
            Err(match self.0.last_error() {
                Some(error) => format!("the JetStream streams are not set up yet: {error}"),
                None => "the JetStream streams are not set up yet".to_owned(),
            })
        };
        Box::pin(std::future::ready(outcome))
    }
}
