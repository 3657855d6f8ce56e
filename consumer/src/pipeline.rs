//! The consumer loop: fetch a batch, decide about every message, park dead
//! letters, insert the rows (one bulk insert per table), then ack.
//!
//! The rules, in the order they bite:
//! - **Ack after storage.** A message is acked only after ClickHouse confirmed
//!   its row (or JetStream confirmed its dead letter). A crash in between means
//!   a redelivery, which the tables absorb (see `migrations/0001_events.sql`).
//! - **ClickHouse down: keep the batch.** The batch stays in hand and is
//!   retried with capped exponential backoff; progress acks keep JetStream from
//!   redelivering it meanwhile, so an outage never counts against MaxDeliver
//!   and never dead-letters anything. `/readyz` reports the failure.
//! - **A bad message never blocks its batch.** Unparsable messages are parked
//!   at once; rows ClickHouse refuses are isolated (see [`crate::store`]) and
//!   nak'ed with a delay, and parked on their last delivery.
//! - **Shutdown finishes the batch in hand.** The loop stops fetching when the
//!   shutdown token is cancelled; the batch in hand is stored and acked. Only
//!   if storing is still impossible when the grace period ends (the hard-stop
//!   token) is it nak'ed, for another instance to take at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use eye_contract::Timestamp;
use eye_server_kit::schemas::SharedSchemas;
use tokio_util::sync::CancellationToken;

use crate::deadletter;
use crate::decode::{Decoder, Meta, Outcome};
use crate::metrics::{CodeLabel, Metrics, RejectLabels};
use crate::puller::Puller;
use crate::rows::{ErrorRow, EventRow};
use crate::status::Status;
use crate::store::Store;

/// How long to wait at shutdown for messages of the last pull request that
/// are still on their way.
const STRAGGLER_WAIT: Duration = Duration::from_millis(200);

/// Which stream a pipeline drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// EYE_EVENTS: events into `events`, rejects into `event_errors`.
    Events,
    /// EYE_REJECTS: the gateway's rejects into `event_errors`.
    Rejects,
}

/// The loop's settings (from [`crate::config::PipelineArgs`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most messages per batch.
    pub batch_size: usize,
    /// Longest wait for a batch to fill.
    pub batch_wait: Duration,
    /// Deliveries before a refused message is parked.
    pub max_deliver: i64,
    /// JetStream's ack wait; progress acks are sent well within it.
    pub ack_wait: Duration,
    /// First retry pause.
    pub retry_min: Duration,
    /// Longest retry pause.
    pub retry_max: Duration,
    /// Bytes of a rejected event's body kept in `event_errors`.
    pub reject_raw_cap: usize,
    /// Test fault: store but never ack.
    pub skip_acks: bool,
}

/// One lane's loop and everything it uses.
pub struct Pipeline {
    /// The lane.
    pub lane: Lane,
    /// The durable pull consumer it drains.
    pub consumer: PullConsumer,
    /// JetStream, for dead letters.
    pub js: jetstream::Context,
    /// The NATS client, to flush acks.
    pub nats: async_nats::Client,
    /// ClickHouse.
    pub store: Store,
    /// The event schemas in force (reloaded on SIGHUP); each batch is decided
    /// with the ones in force when it starts.
    pub schemas: Arc<SharedSchemas>,
    /// Metrics.
    pub metrics: Metrics,
    /// Shared state for /readyz and /status.
    pub status: Arc<Status>,
    /// Settings.
    pub settings: Settings,
}

/// A message and the decision about it.
struct Item {
    message: jetstream::Message,
    meta: Meta,
    outcome: Outcome,
}

/// What happens to a message once its batch is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ack,
    /// Redeliver later (after the delay).
    Nak(Duration),
}

impl Pipeline {
    /// Runs until `shutdown` is cancelled (finishing the batch in hand), or
    /// `hard_stop` ends a batch that cannot be stored.
    ///
    /// A pull is not raced against shutdown: it is answered within
    /// `batch_wait`, and messages already delivered are better processed now
    /// than left to wait for the ack timeout.
    pub async fn run(self, shutdown: CancellationToken, hard_stop: CancellationToken) {
        let mut backoff = Backoff::new(self.settings.retry_min, self.settings.retry_max);
        let mut puller = loop {
            match Puller::new(
                self.consumer.clone(),
                self.js.clone(),
                &self.nats,
                self.settings.batch_size,
                self.settings.batch_wait,
            )
            .await
            {
                Ok(puller) => break puller,
                Err(error) => {
                    tracing::warn!(lane = ?self.lane, %error, "cannot start pulling");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next()) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        };
        while !shutdown.is_cancelled() {
            match puller.next_batch().await {
                Ok(messages) => {
                    backoff.reset();
                    if !messages.is_empty() {
                        self.process(messages, &hard_stop).await;
                    }
                }
                Err(error) => {
                    let pause = backoff.next();
                    tracing::warn!(lane = ?self.lane, %error, ?pause, "cannot fetch from JetStream");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        let stragglers = puller.drain(STRAGGLER_WAIT).await;
        if !stragglers.is_empty() {
            self.process(stragglers, &hard_stop).await;
        }
        tracing::info!(lane = ?self.lane, "pipeline stopped");
    }

    async fn process(&self, messages: Vec<jetstream::Message>, hard_stop: &CancellationToken) {
        let decoder = Decoder::new(self.schemas.current(), self.settings.reject_raw_cap);
        let mut items = Vec::with_capacity(messages.len());
        for message in messages {
            let Some(meta) = meta(&message) else {
                // Without JetStream metadata it cannot be acked either; only a
                // misconfigured server sends such a thing.
                tracing::error!(subject = %message.subject, "message without JetStream metadata, skipped");
                continue;
            };
            if meta.delivered > 1 {
                self.metrics.redeliveries.inc();
            }
            let outcome = match self.lane {
                Lane::Events => decoder.event(message.subject.as_str(), &message.payload, &meta),
                Lane::Rejects => {
                    decoder.gateway_reject(message.subject.as_str(), &message.payload, &meta)
                }
            };
            items.push(Item {
                message,
                meta,
                outcome,
            });
        }
        self.metrics.batch_size.observe(items.len() as f64);
        let mut fates = vec![Fate::Ack; items.len()];

        // Dead letters first: a row in event_errors only for what is parked.
        for (i, item) in items.iter().enumerate() {
            if let Outcome::DeadLetter(row) = &item.outcome {
                match self.park(item, &header_reason(row)).await {
                    Ok(()) => self.count_dead_letter(row),
                    Err(error) => {
                        tracing::warn!(%error, "cannot park a dead letter; it will come back");
                        fates[i] = Fate::Nak(self.settings.retry_min);
                    }
                }
            }
        }

        let mut events: Vec<(usize, EventRow)> = Vec::new();
        let mut errors: Vec<(usize, ErrorRow)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match &item.outcome {
                Outcome::Store(row) => events.push((i, row.clone())),
                Outcome::Reject(row) => errors.push((i, row.clone())),
                Outcome::DeadLetter(row) if fates[i] == Fate::Ack => errors.push((i, row.clone())),
                Outcome::DeadLetter(_) => {}
            }
        }

        let Some(refused) = self.store_all(&items, &events, &errors, hard_stop).await else {
            // Hard stop while ClickHouse is unavailable: hand everything back.
            self.settle(&items, &vec![Fate::Nak(Duration::ZERO); items.len()])
                .await;
            return;
        };
        let refused_events = refused
            .iter()
            .filter(|(i, _)| events.iter().any(|(e, _)| e == i))
            .count();
        let refused_errors = refused.len() - refused_events;
        self.count_stored(&events, &errors, &refused);
        self.status.inserted(
            (events.len() - refused_events) as u64,
            (errors.len() - refused_errors) as u64,
        );

        for (i, reason) in refused {
            fates[i] = self.refused(&decoder, &items[i], &reason).await;
        }
        self.settle(&items, &fates).await;
    }

    /// Inserts both tables, retrying while ClickHouse is unavailable. Returns
    /// the refused rows, or `None` if `hard_stop` came first.
    async fn store_all(
        &self,
        items: &[Item],
        events: &[(usize, EventRow)],
        errors: &[(usize, ErrorRow)],
        hard_stop: &CancellationToken,
    ) -> Option<Vec<(usize, String)>> {
        let mut backoff = Backoff::new(self.settings.retry_min, self.settings.retry_max);
        let mut last_progress = Instant::now();
        let mut refused_events: Option<Vec<(usize, String)>> = None;
        loop {
            let outcome = async {
                let refused = match &refused_events {
                    Some(refused) => refused.clone(),
                    None => {
                        let refused = self.store.insert_isolating("events", events).await?;
                        refused_events = Some(refused.clone());
                        refused
                    }
                };
                let mut refused_errors =
                    self.store.insert_isolating("event_errors", errors).await?;
                refused_errors.extend(refused);
                Ok::<_, String>(refused_errors)
            }
            .await;
            match outcome {
                Ok(refused) => {
                    self.metrics
                        .last_insert
                        .set(Timestamp::now().as_micros() / 1_000_000);
                    return Some(refused);
                }
                Err(error) => {
                    self.status.insert_failed(error.clone());
                    let pause = backoff.next();
                    tracing::warn!(lane = ?self.lane, %error, ?pause, messages = items.len(), "ClickHouse unavailable; keeping the batch and retrying");
                    if hard_stop.is_cancelled() {
                        return None;
                    }
                    if last_progress.elapsed() >= self.settings.ack_wait / 3 {
                        self.keep_alive(items).await;
                        last_progress = Instant::now();
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = hard_stop.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// A row ClickHouse refused: try again later, or park it on its last delivery.
    async fn refused(&self, decoder: &Decoder, item: &Item, reason: &str) -> Fate {
        if item.meta.delivered < self.settings.max_deliver {
            tracing::warn!(sequence = item.meta.sequence, delivered = item.meta.delivered, %reason, "ClickHouse refused a row; it will be retried");
            let exponent = u32::try_from(item.meta.delivered.clamp(0, 16)).unwrap_or(16);
            let delay = self
                .settings
                .retry_min
                .saturating_mul(2u32.saturating_pow(exponent))
                .min(self.settings.retry_max);
            return Fate::Nak(delay);
        }
        let row = decoder.storage_failed(
            item.message.subject.as_str(),
            &item.message.payload,
            &item.meta,
            reason,
        );
        if let Err(error) = self.park(item, &header_reason(&row)).await {
            tracing::warn!(%error, "cannot park a refused message; it will come back");
            return Fate::Nak(self.settings.retry_min);
        }
        self.count_dead_letter(&row);
        // The dead letter is the record that counts; the row is for operators.
        if let Err(error) = self.store.insert("event_errors", &[&row]).await {
            tracing::warn!(?error, "cannot record a dead letter in event_errors");
        }
        Fate::Ack
    }

    async fn park(&self, item: &Item, reason: &str) -> Result<(), String> {
        deadletter::park(
            &self.js,
            item.message.subject.as_str(),
            item.message.payload.clone(),
            item.message.headers.as_ref(),
            &item.meta,
            reason,
        )
        .await
    }

    fn count_dead_letter(&self, row: &ErrorRow) {
        let code = eye_contract::ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == row.code)
            .map_or("other", |c| c.as_str());
        self.metrics
            .dead_letters
            .get_or_create(&CodeLabel { code })
            .inc();
        self.status.dead_lettered();
    }

    fn count_stored(
        &self,
        events: &[(usize, EventRow)],
        errors: &[(usize, ErrorRow)],
        refused: &[(usize, String)],
    ) {
        let is_refused = |i: &usize| refused.iter().any(|(r, _)| r == i);
        let stored = events.iter().filter(|(i, _)| !is_refused(i)).count();
        self.metrics.events_stored.inc_by(stored as u64);
        for (_, row) in errors.iter().filter(|(i, _)| !is_refused(i)) {
            let source = if row.source == "gateway" {
                "gateway"
            } else {
                "consumer"
            };
            self.metrics
                .rejects
                .get_or_create(&RejectLabels {
                    source,
                    code: row.code.clone(),
                })
                .inc();
        }
    }

    /// Tells JetStream the batch is still being worked on (resets ack wait).
    async fn keep_alive(&self, items: &[Item]) {
        for item in items {
            if let Err(error) = item.message.ack_with(AckKind::Progress).await {
                tracing::debug!(%error, "progress ack failed");
            }
        }
    }

    /// Acks or naks every message, then flushes so the server has them.
    async fn settle(&self, items: &[Item], fates: &[Fate]) {
        if self.settings.skip_acks {
            return;
        }
        for (item, fate) in items.iter().zip(fates) {
            let kind = match fate {
                Fate::Ack => AckKind::Ack,
                Fate::Nak(delay) if delay.is_zero() => AckKind::Nak(None),
                Fate::Nak(delay) => AckKind::Nak(Some(*delay)),
            };
            if let Err(error) = item.message.ack_with(kind).await {
                tracing::warn!(%error, sequence = item.meta.sequence, "ack failed; the message will be redelivered");
            }
        }
        if let Err(error) = self.nats.flush().await {
            tracing::warn!(%error, "cannot flush acks");
        }
    }
}

/// The dead-letter header of a parked message: `<code>: <message>`.
fn header_reason(row: &ErrorRow) -> String {
    format!("{}: {}", row.code, row.message)
}

/// The stream position and stored time of a JetStream message.
fn meta(message: &jetstream::Message) -> Option<Meta> {
    let info = message.info().ok()?;
    let micros = i64::try_from(info.published.unix_timestamp_nanos() / 1000).ok()?;
    Some(Meta {
        stream: info.stream.to_owned(),
        sequence: info.stream_sequence,
        delivered: info.delivered,
        received: Timestamp::from_micros(micros),
    })
}

/// Capped exponential backoff.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    fn next(&mut self) -> Duration {
        let pause = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        pause
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let pauses: Vec<u128> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
    }
}
