//! What one attempt to deliver part of a batch gives, whatever the transport.

use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::error::{Failure, Rejection};
use crate::gateway::GatewayTransport;
use crate::nats::NatsTransport;

/// One event's outcome in an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored under this id.
    Accepted(String),
    /// Invalid; final.
    Rejected(Rejection),
    /// Not stored this time; resend.
    Retry(Failure),
}

/// The result of one attempt.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// One outcome per event sent, in the order sent.
    PerEvent {
        outcomes: Vec<Outcome>,
        retry_after: Option<Duration>,
    },
    /// Nothing was decided; resend every event.
    Retry {
        failure: Failure,
        retry_after: Option<Duration>,
    },
    /// The request was refused as a whole, for good.
    Refused { status: u16, detail: Arc<str> },
    /// The request was too large: send fewer events at once.
    TooLarge { status: u16, detail: Arc<str> },
}

/// Where batches go.
pub(crate) enum Transport {
    /// `POST /v1/events` on the gateway.
    Gateway(GatewayTransport),
    /// Publishes straight to JetStream.
    Nats(NatsTransport),
}

impl Transport {
    /// Sends the events at `pending` (indices into `batch`) once.
    pub(crate) async fn attempt(&self, batch: &Batch, pending: &[usize]) -> Attempt {
        match self {
            Transport::Gateway(t) => t.attempt(batch, pending).await,
            Transport::Nats(t) => t.attempt(batch, pending).await,
        }
    }

    /// The client whose id must be set on each event before it is batched
    /// (NATS: the dedup id is computed here, not by a gateway).
    pub(crate) fn nats_client(&self) -> Option<&str> {
        match self {
            Transport::Gateway(_) => None,
            Transport::Nats(t) => Some(&t.client),
        }
    }
}
