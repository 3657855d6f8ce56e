//! The sending pipeline: a queue, one batching task, and up to `concurrency`
//! delivery tasks.
//!
//! ```text
//! send() ──queue (bounded)──▶ batcher ──batch──▶ deliver (≤ concurrency at once)
//!                              │ serializes each event into the batch's buffer
//!                              └ seals a batch by count, bytes or linger time
//! ```
//!
//! A delivery task owns its batch until every event in it has an outcome:
//! it retries what is retryable (with backoff, holding its concurrency slot,
//! so an outage slows senders down instead of piling up requests), splits
//! the batch in halves when the gateway says it is too large, and resolves
//! each event's receipt.
//!
//! Flush and close travel through the same queue as the events, so they
//! cover exactly the events sent before them. They wait for the delivery
//! tasks by taking every concurrency slot: the semaphore is fair, so that
//! happens only after every batch dispatched before them has finished.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::{Instant, sleep};

use crate::batch::{Batch, NatsMeta, OpenBatch};
use crate::config::{BatchConfig, RetryPolicy};
use crate::error::{ClientError, Failure, SendError};
use crate::event::Event;
use crate::receipt::{Accepted, Counters, Receipt, Reply};
use crate::transport::{Attempt, Outcome, Transport};

/// What travels through the queue.
enum Command {
    Event(Event, Option<Reply>),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// The client's handle on its pipeline.
pub(crate) struct SenderHandle {
    tx: mpsc::Sender<Command>,
    pub(crate) counters: Arc<Counters>,
}

/// What the batcher and the delivery tasks share.
struct Shared {
    transport: Transport,
    retry: RetryPolicy,
    counters: Arc<Counters>,
}

impl SenderHandle {
    /// Starts the pipeline on the current Tokio runtime.
    pub(crate) fn start(
        transport: Transport,
        batch: BatchConfig,
        retry: RetryPolicy,
    ) -> Result<SenderHandle, ClientError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ClientError::NoRuntime)?;
        let concurrency = u32::try_from(batch.concurrency)
            .ok()
            .filter(|c| *c >= 1 && usize::try_from(*c).is_ok_and(|c| c <= Semaphore::MAX_PERMITS))
            .ok_or_else(|| {
                ClientError::Config(format!(
                    "concurrency must be between 1 and {}, got {}",
                    u32::MAX,
                    batch.concurrency
                ))
            })?;
        let (tx, rx) = mpsc::channel(batch.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let batcher = Batcher {
            shared: Arc::new(Shared {
                transport,
                retry,
                counters: Arc::clone(&counters),
            }),
            config: batch,
            slots: Arc::new(Semaphore::new(batch.concurrency)),
            concurrency,
        };
        runtime.spawn(batcher.run(rx));
        Ok(SenderHandle { tx, counters })
    }

    /// Queues `event`, waiting while the queue is full.
    pub(crate) async fn send(
        &self,
        event: Event,
        reply: bool,
    ) -> Result<Option<Receipt>, ClientError> {
        let (reply, receipt) = if reply {
            let (reply, receipt) = Receipt::new();
            (Some(reply), Some(receipt))
        } else {
            (None, None)
        };
        self.tx
            .send(Command::Event(event, reply))
            .await
            .map_err(|_| ClientError::Closed)?;
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        Ok(receipt)
    }

    /// Sends everything queued so far and waits for every outcome.
    pub(crate) async fn flush(&self) -> Result<(), ClientError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Command::Flush(done))
            .await
            .map_err(|_| ClientError::Closed)?;
        wait.await.map_err(|_| ClientError::Closed)
    }

    /// Sends everything queued, waits for every outcome, and stops.
    pub(crate) async fn close(&self) -> Result<(), ClientError> {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Close(done)).await.is_err() {
            // Already closed (by another clone): wait for the batcher to finish.
            self.tx.closed().await;
            return Ok(());
        }
        wait.await.map_err(|_| ClientError::Closed)
    }
}

struct Batcher {
    shared: Arc<Shared>,
    config: BatchConfig,
    slots: Arc<Semaphore>,
    concurrency: u32,
}

impl Batcher {
    async fn run(self, mut rx: mpsc::Receiver<Command>) {
        let mut open = OpenBatch::default();
        let mut deadline: Option<Instant> = None;
        let mut closers = Vec::new();
        loop {
            let command = match deadline {
                Some(at) => tokio::select! {
                    biased;
                    command = rx.recv() => command,
                    () = tokio::time::sleep_until(at) => {
                        self.dispatch(&mut open).await;
                        deadline = None;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            match command {
                Some(Command::Event(event, reply)) => {
                    self.add(&mut open, event, reply).await;
                    if open.is_empty() {
                        deadline = None;
                    } else {
                        let at = *deadline.get_or_insert_with(|| later(self.config.linger));
                        if Instant::now() >= at {
                            self.dispatch(&mut open).await;
                            deadline = None;
                        }
                    }
                }
                Some(Command::Flush(done)) => {
                    self.dispatch(&mut open).await;
                    deadline = None;
                    self.when_idle(done);
                }
                Some(Command::Close(done)) => {
                    // Stop taking new commands, but keep draining those queued.
                    rx.close();
                    closers.push(done);
                }
                None => {
                    self.dispatch(&mut open).await;
                    if let Ok(all) = self.slots.acquire_many(self.concurrency).await {
                        drop(all);
                    }
                    for done in closers {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    /// Adds one event, sending batches that are full.
    async fn add(&self, open: &mut OpenBatch, mut event: Event, reply: Option<Reply>) {
        let nats = self.shared.transport.nats_client().map(|client| {
            let event_id = event.id_for(client);
            let subject = eye_contract::events_subject(client, &event.category);
            event.event_id = Some(event_id.clone());
            NatsMeta { subject, event_id }
        });
        if let Err((error, reply)) = open.push(&event, reply, nats) {
            let delivery = Err(SendError::Abandoned(
                format!("the event cannot be serialized: {error}").into(),
            ));
            self.shared.counters.count(&delivery);
            if let Some(reply) = reply {
                reply.resolve(delivery);
            }
            return;
        }
        if open.bytes() > self.config.max_bytes && open.len() > 1 {
            let tail = open.split_last();
            self.dispatch(open).await;
            *open = tail;
        }
        if open.len() >= self.config.max_events || open.bytes() >= self.config.max_bytes {
            self.dispatch(open).await;
        }
    }

    /// Sends the open batch (if any) once a concurrency slot is free.
    async fn dispatch(&self, open: &mut OpenBatch) {
        if open.is_empty() {
            return;
        }
        let batch = open.seal();
        // The semaphore is never closed, so this only fails if it were.
        let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            deliver(&shared, batch).await;
            drop(slot);
        });
    }

    /// Answers `done` once every batch dispatched so far has finished.
    fn when_idle(&self, done: oneshot::Sender<()>) {
        let slots = Arc::clone(&self.slots);
        let n = self.concurrency;
        tokio::spawn(async move {
            if let Ok(all) = slots.acquire_many(n).await {
                drop(all);
            }
            let _ = done.send(());
        });
    }
}

/// `d` from now, or a year from now if that overflows the clock.
pub(crate) fn later(d: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(std::time::Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// Delivers one batch: attempts, retries, splits; every event gets an outcome.
async fn deliver(shared: &Shared, mut batch: Batch) {
    let counters = &shared.counters;
    let mut work: Vec<Vec<usize>> = vec![(0..batch.len()).collect()];
    while let Some(mut pending) = work.pop() {
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let attempt = shared.transport.attempt(&batch, &pending).await;
            let (retry, failure, retry_after) = match attempt {
                Attempt::PerEvent {
                    outcomes,
                    retry_after,
                } => {
                    let mut retry = Vec::new();
                    let mut last = None;
                    for (outcome, &i) in outcomes.into_iter().zip(&pending) {
                        match outcome {
                            Outcome::Accepted(event_id) => {
                                batch.resolve(i, Ok(Accepted { event_id }), counters)
                            }
                            Outcome::Rejected(rejection) => {
                                batch.resolve(i, Err(SendError::Rejected(rejection)), counters)
                            }
                            Outcome::Retry(failure) => {
                                retry.push(i);
                                last = Some(failure);
                            }
                        }
                    }
                    (retry, last, retry_after)
                }
                Attempt::Retry {
                    failure,
                    retry_after,
                } => (pending, Some(failure), retry_after),
                Attempt::TooLarge { .. } if pending.len() > 1 => {
                    let second = pending.split_off(pending.len() / 2);
                    work.push(second);
                    work.push(pending);
                    break;
                }
                Attempt::Refused { status, detail } | Attempt::TooLarge { status, detail } => {
                    for &i in &pending {
                        let error = SendError::Refused {
                            status,
                            detail: Arc::clone(&detail),
                        };
                        batch.resolve(i, Err(error), counters);
                    }
                    break;
                }
            };
            if retry.is_empty() {
                break;
            }
            let last = failure.unwrap_or(Failure::Protocol("no reason given".into()));
            if attempts > shared.retry.max_retries {
                tracing::warn!(events = retry.len(), attempts, %last, "giving up on events");
                for &i in &retry {
                    let error = SendError::GaveUp {
                        attempts,
                        last: last.clone(),
                    };
                    batch.resolve(i, Err(error), counters);
                }
                break;
            }
            tracing::debug!(events = retry.len(), attempts, %last, "retrying events");
            Counters::add(&counters.retried, retry.len());
            sleep(shared.retry.backoff(attempts, retry_after)).await;
            pending = retry;
        }
    }
}
