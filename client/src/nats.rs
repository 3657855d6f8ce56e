//! The direct-NATS transport: publishes each event to JetStream on
//! `eye.events.<client>.<category-token>`, the way the gateway does.
//!
//! Each message carries the event's JSON (with its `event_id`, derived by the
//! client when the event has none) and the headers of the contract:
//! `Nats-Msg-Id` = [`eye_contract::dedup_id`] (so a resend inside the
//! stream's duplicate window is stored once), `Eye-Event-Id` and
//! `Eye-Client-Id`. The events of an attempt are all sent first and their
//! acknowledgements awaited together, under one deadline (pipelined).
//!
//! Nothing validates the events on the way: the consumer does, and records
//! invalid ones in `event_errors` (read them with [`crate::Client::errors`]).
//! An acknowledged event is durable in the stream; that is what "accepted"
//! means here.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use eye_contract::{dedup_id, headers};
use tokio::time::timeout_at;

use crate::batch::Batch;
use crate::error::Failure;
use crate::transport::{Attempt, Outcome};

/// Publishes batches to JetStream.
pub(crate) struct NatsTransport {
    pub(crate) js: jetstream::Context,
    /// The publishing client's id: the `<client>` token of its subjects.
    pub(crate) client: String,
    /// How long an attempt waits for its acknowledgements.
    pub(crate) timeout: Duration,
}

impl NatsTransport {
    /// A transport over `nats` for `client`.
    pub(crate) fn new(nats: async_nats::Client, client: String, timeout: Duration) -> Self {
        let js = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .ack_timeout(timeout)
            .build(nats);
        NatsTransport {
            js,
            client,
            timeout,
        }
    }

    /// Publishes the events at `pending` (indices into `batch`) once.
    pub(crate) async fn attempt(&self, batch: &Batch, pending: &[usize]) -> Attempt {
        let deadline = crate::sender::later(self.timeout);
        let mut sent = Vec::with_capacity(pending.len());
        for &i in pending {
            let Some(meta) = batch.nats.get(i) else {
                sent.push(Err(Failure::Protocol("event without a subject".into())));
                continue;
            };
            let mut h = async_nats::HeaderMap::new();
            h.insert(headers::EVENT_ID, meta.event_id.as_str());
            h.insert(headers::CLIENT_ID, self.client.as_str());
            let message = PublishMessage::build()
                .payload(batch.line(i))
                .headers(h)
                .message_id(dedup_id(&self.client, &meta.event_id));
            sent.push(
                match timeout_at(
                    deadline,
                    self.js.send_publish(meta.subject.clone(), message),
                )
                .await
                {
                    Ok(Ok(ack)) => Ok(ack),
                    Ok(Err(error)) => Err(classify(&error)),
                    Err(_elapsed) => Err(Failure::Timeout),
                },
            );
        }
        let acks = futures::future::join_all(sent.into_iter().map(|sent| async move {
            let ack = sent?;
            match timeout_at(deadline, ack.into_future()).await {
                Ok(Ok(_ack)) => Ok(()),
                Ok(Err(error)) => Err(classify(&error)),
                Err(_elapsed) => Err(Failure::Timeout),
            }
        }))
        .await;
        let outcomes = acks
            .into_iter()
            .zip(pending)
            .map(|(ack, &i)| match ack {
                Ok(()) => Outcome::Accepted(
                    batch
                        .nats
                        .get(i)
                        .map(|m| m.event_id.clone())
                        .unwrap_or_default(),
                ),
                Err(failure) => Outcome::Retry(failure),
            })
            .collect();
        Attempt::PerEvent {
            outcomes,
            retry_after: None,
        }
    }
}

/// The retryable failure of a publish, named like the gateway's retry codes
/// where one fits.
fn classify(error: &PublishError) -> Failure {
    match error.kind() {
        PublishErrorKind::TimedOut => Failure::Timeout,
        PublishErrorKind::MaxAckPending => Failure::Retry("overloaded".into()),
        PublishErrorKind::StreamNotFound => Failure::Retry("broker_unavailable".into()),
        _ => {
            let text = error.to_string();
            if text.contains("maximum") {
                Failure::Retry("stream_full".into())
            } else {
                Failure::Transport(text.into())
            }
        }
    }
}
