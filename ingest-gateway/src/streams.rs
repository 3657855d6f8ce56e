//! Creating the JetStream streams at start-up without making NATS a start-up
//! dependency: the gateway starts, reports "not ready", and keeps trying in the
//! background until the streams exist.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use eye_server_kit::jetstream::{create_or_update_streams, StreamArgs};
use eye_server_kit::ops::ReadinessCheck;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// First pause between attempts; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates or updates the streams, retrying with backoff until it works or
/// `shutdown` is cancelled; sets `ready` when done.
pub async fn ensure_streams(
    js: jetstream::Context,
    args: StreamArgs,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, create_or_update_streams(&js, &args));
        match outcome.await {
            Ok(Ok(())) => {
                ready.store(true, Ordering::Release);
                tracing::info!(attempt, "JetStream streams are ready");
                return;
            }
            Ok(Err(error)) => tracing::warn!(attempt, %error, "cannot set up the streams yet"),
            Err(_) => tracing::warn!(attempt, "setting up the streams timed out"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Ready once the streams exist.
pub struct StreamsReady(pub Arc<AtomicBool>);

impl ReadinessCheck for StreamsReady {
    fn name(&self) -> &'static str {
        "streams"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let ready = self.0.load(Ordering::Acquire);
        Box::pin(async move {
            if ready {
                Ok(())
            } else {
                Err("the JetStream streams are not set up yet".to_owned())
            }
        })
    }
}
