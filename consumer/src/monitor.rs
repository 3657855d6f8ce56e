//! Polls JetStream for what waits for the consumer: pending and ack-pending
//! messages of both durable consumers, the age of the oldest unacknowledged
//! event, and the dead-letter depth. Feeds the gauges, `/status` and the lag
//! bound of `/readyz`. Also trims acknowledged events from `EYE_EVENTS` when
//! it runs full (see [`crate::trim`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::stream::Stream;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ConsumerLabel, Metrics};
use crate::status::{Lag, Status};
use crate::trim::Trimmed;

/// What the monitor watches.
pub struct Monitor {
    /// The events consumer.
    pub events: PullConsumer,
    /// The events stream, to read the oldest unacknowledged message's time.
    pub events_stream: Stream,
    /// The gateway rejects consumer.
    pub rejects: PullConsumer,
    /// The dead-letter stream.
    pub dead_letters: Stream,
    /// Shared state.
    pub status: Arc<Status>,
    /// Metrics.
    pub metrics: Metrics,
    /// Time between polls.
    pub interval: Duration,
    /// `--stream-trim-above`: trim EYE_EVENTS above this share of its limit.
    pub trim_above_percent: u8,
}

impl Monitor {
    /// Polls every `interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.poll().await {
                Ok(()) => {}
                Err(error) => {
                    tracing::debug!(%error, "cannot read consumer lag");
                    self.status.poll_failed(error);
                }
            }
            self.trim().await;
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn poll(&self) -> Result<(), String> {
        let events = self.lag(&self.events, Some(&self.events_stream)).await?;
        let rejects = self.lag(&self.rejects, None).await.ok();
        let depth = self
            .dead_letters
            .get_info()
            .await
            .map(|info| info.state.messages)
            .ok();
        if let Some(depth) = depth {
            self.metrics
                .dead_letter_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        self.status.polled(events, rejects, depth);
        Ok(())
    }

    async fn trim(&self) {
        match crate::trim::trim(&self.events_stream, self.trim_above_percent).await {
            Ok(Trimmed::Nothing) => {}
            Ok(Trimmed::Purged { below, messages }) => {
                self.metrics.stream_trimmed.inc_by(messages);
                tracing::info!(
                    below_sequence = below,
                    messages,
                    "trimmed acknowledged events from the events stream"
                );
            }
            Err(error) => tracing::warn!(%error, "cannot trim the events stream"),
        }
    }

    async fn lag(&self, consumer: &PullConsumer, stream: Option<&Stream>) -> Result<Lag, String> {
        let info = consumer
            .get_info()
            .await
            .map_err(|error| format!("consumer info: {error}"))?;
        let label = ConsumerLabel {
            consumer: info.name.clone(),
        };
        let pending = info.num_pending;
        let ack_pending = u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
        self.metrics
            .lag_pending
            .get_or_create(&label)
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.metrics
            .lag_ack_pending
            .get_or_create(&label)
            .set(i64::try_from(ack_pending).unwrap_or(i64::MAX));
        let mut lag = Lag {
            pending,
            ack_pending,
            redelivered: u64::try_from(info.num_redelivered).unwrap_or(u64::MAX),
            oldest_pending_age_seconds: None,
        };
        if let (Some(stream), true) = (stream, lag.total() > 0) {
            // The first message after the ack floor is the oldest not acknowledged
            // (one request; gone if the stream dropped it, then unknown).
            let oldest = info.ack_floor.stream_sequence.saturating_add(1);
            if let Ok(message) = stream.get_raw_message(oldest).await {
                let nanos = async_nats::datetime::now().unix_timestamp_nanos()
                    - message.time.unix_timestamp_nanos();
                lag.oldest_pending_age_seconds = Some((nanos as f64 / 1e9).max(0.0));
            }
        }
        Ok(lag)
    }
}
