//! [`Receipt`]: the future outcome of one sent event, and [`SendStats`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::error::SendError;

/// An event the gateway (or JetStream) stored durably.
///
/// ```no_run
/// # async fn example(client: eye_client::Client, event: eye_client::Event) -> Result<(), Box<dyn std::error::Error>> {
/// let eye_client::Accepted { event_id } = client.send(event).await?.await?;
/// println!("stored as {event_id}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The id it is stored under (its own `event_id`, or the derived one).
    pub event_id: String,
}

/// What finally happened to one event.
///
/// ```
/// use eye_client::{Accepted, Delivery};
/// let delivery: Delivery = Ok(Accepted { event_id: "b720eb67-867a-8348-b087-59824a162261".into() });
/// assert!(delivery.is_ok());
/// ```
pub type Delivery = Result<Accepted, SendError>;

/// The outcome of one event given to [`crate::Client::send`]; a future that
/// resolves once the event is stored, rejected, or given up.
///
/// Dropping a receipt does not cancel the event: it is still sent, only its
/// outcome is not reported (it still counts in [`crate::Client::stats`]).
///
/// ```no_run
/// # async fn example(client: eye_client::Client, event: eye_client::Event) -> Result<(), eye_client::ClientError> {
/// let receipt = client.send(event).await?;
/// match receipt.await {
///     Ok(accepted) => println!("stored as {}", accepted.event_id),
///     Err(error) => eprintln!("not stored: {error}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a receipt does nothing unless awaited; use `enqueue` to send without one"]
pub struct Receipt {
    rx: oneshot::Receiver<Delivery>,
}

impl Receipt {
    pub(crate) fn new() -> (Reply, Receipt) {
        let (tx, rx) = oneshot::channel();
        (Reply(tx), Receipt { rx })
    }
}

impl Future for Receipt {
    type Output = Delivery;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Delivery> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(SendError::Abandoned(
                    "the sender stopped (its runtime shut down) before the outcome was known"
                        .into(),
                ))
            })
        })
    }
}

/// The sending side of a [`Receipt`].
#[derive(Debug)]
pub(crate) struct Reply(oneshot::Sender<Delivery>);

impl Reply {
    pub(crate) fn resolve(self, delivery: Delivery) {
        // The receipt may have been dropped: nobody wants the outcome then.
        let _ = self.0.send(delivery);
    }
}

/// Counts of what the sender did since the client was built.
///
/// ```
/// let stats = eye_client::SendStats::default();
/// assert_eq!(stats.accepted + stats.rejected + stats.failed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Events given to `send` or `enqueue`.
    pub queued: u64,
    /// Events stored.
    pub accepted: u64,
    /// Events the gateway rejected as invalid.
    pub rejected: u64,
    /// Events given up or refused (not stored).
    pub failed: u64,
    /// Requests (or NATS publish rounds) made, retries included.
    pub requests: u64,
    /// Events resent after a retryable failure (an event resent twice counts twice).
    pub retried: u64,
}

impl SendStats {
    /// Events whose outcome is not known yet.
    ///
    /// ```
    /// let stats = eye_client::SendStats { queued: 5, accepted: 3, ..Default::default() };
    /// assert_eq!(stats.pending(), 2);
    /// ```
    pub fn pending(&self) -> u64 {
        self.queued
            .saturating_sub(self.accepted + self.rejected + self.failed)
    }
}

/// The live counters behind [`SendStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) queued: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retried: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SendStats {
        SendStats {
            queued: self.queued.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count(&self, delivery: &Delivery) {
        let counter = match delivery {
            Ok(_) => &self.accepted,
            Err(SendError::Rejected(_)) => &self.rejected,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}
