//! Keeping the JetStream streams in place without making NATS a start-up
//! dependency: the gateway starts, reports "not ready", and keeps trying in the
//! background until the streams exist — and sets them up again whenever a
//! publish finds its stream missing (a NATS server that lost its store, an
//! operator who deleted a stream), so the gateway heals without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
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

/// Whether the streams are known to exist, and the way to ask for them again.
#[derive(Debug, Default)]
pub struct Streams {
    ready: AtomicBool,
    lost: Notify,
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

    /// A publish found no stream for its subject: not ready until they are set
    /// up again.
    pub fn lost(&self) {
        if self.ready.swap(false, Ordering::AcqRel) {
            tracing::warn!("a JetStream stream is missing; setting the streams up again");
        }
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
            tokio::select! {
                _ = self.lost.notified() => {}
                _ = shutdown.cancelled() => return,
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
                    self.ready.store(true, Ordering::Release);
                    tracing::info!(attempt, "JetStream streams are ready");
                    return true;
                }
                Ok(Err(error)) => tracing::warn!(attempt, %error, "cannot set up the streams yet"),
                Err(_) => tracing::warn!(attempt, "setting up the streams timed out"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return false,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Ready once the streams exist.
pub struct StreamsReady(pub Arc<Streams>);

impl ReadinessCheck for StreamsReady {
    fn name(&self) -> &'static str {
        "streams"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let ready = self.0.ready();
        Box::pin(async move {
            if ready {
                Ok(())
            } else {
                Err("the JetStream streams are not set up yet".to_owned())
            }
        })
    }
}
