//! Batches from a durable pull consumer over one long-lived inbox.
//!
//! Why not the client's `consumer.batch()`: it subscribes a fresh inbox per
//! pull request and drops it when the request's end-of-request status (408)
//! arrives. nats-server can send that status ahead of messages it is still
//! delivering for the same request (seen here with 2.9: one batch of 500
//! delivered 381 messages before the 408 and 119 after it). Those messages
//! then went to a dead inbox and waited out the whole ack wait before being
//! redelivered. Here the inbox lives as long as the pipeline, so a message
//! that arrives after its request ended is simply part of the next batch, and
//! at shutdown the stragglers are collected before the last batch is settled.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull::BatchConfig, consumer::PullConsumer};
use async_nats::{StatusCode, Subject, Subscriber};
use futures::{FutureExt, StreamExt};

/// How long past its expiry a pull request may stay unanswered before the
/// batch is taken as complete (the server normally answers at expiry).
const ANSWER_SLACK: Duration = Duration::from_secs(2);

/// Pulls batches of at most `batch_size` messages, waiting at most `batch_wait`.
pub struct Puller {
    consumer: PullConsumer,
    js: jetstream::Context,
    subscriber: Subscriber,
    inbox: Subject,
    batch_size: usize,
    batch_wait: Duration,
}

impl Puller {
    /// Subscribes the inbox this puller's requests are answered on.
    pub async fn new(
        consumer: PullConsumer,
        js: jetstream::Context,
        nats: &async_nats::Client,
        batch_size: usize,
        batch_wait: Duration,
    ) -> Result<Puller, String> {
        let inbox = Subject::from(nats.new_inbox());
        let subscriber = nats
            .subscribe(inbox.clone())
            .await
            .map_err(|error| format!("cannot subscribe the pull inbox: {error}"))?;
        Ok(Puller {
            consumer,
            js,
            subscriber,
            inbox,
            batch_size,
            batch_wait,
        })
    }

    /// The next batch: messages already here, then one pull request for the
    /// rest. A partial batch is returned `batch_wait` after the request, not
    /// when the server ends the request: while messages keep coming,
    /// nats-server 2.9 keeps feeding a request past its expiry without
    /// answering it (batches of 1–2 s at 200 ms were seen at 5,000 events/s).
    /// What it delivers afterwards lands in the inbox for the next batch.
    /// With nothing received, the wait lasts until the server answers or
    /// `ANSWER_SLACK` more has passed. May be empty.
    pub async fn next_batch(&mut self) -> Result<Vec<jetstream::Message>, String> {
        let mut batch = Vec::new();
        while batch.len() < self.batch_size {
            match self.subscriber.next().now_or_never() {
                Some(Some(message)) => self.take(message, &mut batch),
                Some(None) => return Err("the pull inbox was closed".to_owned()),
                None => break,
            }
        }
        if batch.len() >= self.batch_size {
            return Ok(batch);
        }
        let request = BatchConfig {
            batch: self.batch_size - batch.len(),
            expires: Some(self.batch_wait),
            ..Default::default()
        };
        let cut = tokio::time::Instant::now() + self.batch_wait;
        self.consumer
            .request_batch(request, self.inbox.clone())
            .await
            .map_err(|error| format!("cannot request a batch: {error}"))?;
        let give_up = cut + ANSWER_SLACK;
        while batch.len() < self.batch_size {
            // Past the cut, messages already in the inbox are still taken
            // (the timeout polls the inbox before its clock).
            let deadline = if batch.is_empty() { give_up } else { cut };
            let message = match tokio::time::timeout_at(deadline, self.subscriber.next()).await {
                Err(_) => break,
                Ok(None) => return Err("the pull inbox was closed".to_owned()),
                Ok(Some(message)) => message,
            };
            match message.status {
                None | Some(StatusCode::OK) => self.take(message, &mut batch),
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                // A request expired or found nothing: the batch is what came.
                Some(StatusCode::TIMEOUT) | Some(StatusCode::NOT_FOUND) => break,
                Some(status) if batch.is_empty() => {
                    return Err(format!(
                        "pull request refused: {status} {}",
                        message.description.unwrap_or_default()
                    ))
                }
                Some(_) => break,
            }
        }
        Ok(batch)
    }

    /// Messages that arrive within `wait` (stragglers of the last request),
    /// so they are settled before the pipeline stops instead of waiting out
    /// the ack wait.
    pub async fn drain(&mut self, wait: Duration) -> Vec<jetstream::Message> {
        let mut batch = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(message)) =
            tokio::time::timeout_at(deadline, self.subscriber.next()).await
        {
            if matches!(message.status, None | Some(StatusCode::OK)) {
                self.take(message, &mut batch);
            }
        }
        batch
    }

    fn take(&self, message: async_nats::Message, batch: &mut Vec<jetstream::Message>) {
        if matches!(message.status, None | Some(StatusCode::OK)) {
            batch.push(jetstream::Message {
                message,
                context: self.js.clone(),
            });
        }
    }
}
