//! The Rust client of The Eye: send events to the ingest gateway (or
//! straight to NATS JetStream) and read them back from the query service.
//!
//! # Sending
//!
//! [`Client::send`] queues an event and returns a [`Receipt`], a future of
//! that event's outcome: [`Accepted`] with the id it is stored under, or a
//! [`SendError`] (rejected as invalid, refused, or given up after retries).
//! Behind it:
//!
//! - **Batching.** Events are serialized straight into one NDJSON request
//!   body per batch; a batch goes out at [`BatchConfig::max_events`] events,
//!   [`BatchConfig::max_bytes`] bytes or [`BatchConfig::linger`] after its
//!   first event. `max_events: 1` sends one request per event.
//! - **Pipelining.** Up to [`BatchConfig::concurrency`] requests are in
//!   flight over one keep-alive connection pool; past that, and with
//!   [`BatchConfig::queue_capacity`] events waiting, `send` waits.
//! - **Retries.** Connection errors, timeouts, 408/429/5xx and events the
//!   gateway answered `"failed"` (a [`RetryCode`] such as `publish_timeout`)
//!   are resent with capped exponential backoff and jitter
//!   ([`RetryPolicy`]), honouring `Retry-After`. That is safe because an
//!   event's id is stable — its own `event_id`, or derived from its content
//!   and client by the gateway ([`Event::id_for`] gives the same id) — so a
//!   copy that did arrive is deduplicated. A batch the gateway finds too large
//!   (413) is split in halves.
//! - **Authentication.** A write key (`Authorization: Bearer`) or HMAC
//!   signatures (`X-Eye-Client`, `X-Eye-Timestamp`, `X-Eye-Signature`; see
//!   [`sign`]), computed over the body as sent (after gzip, [`ClientBuilder::gzip`]).
//! - **Shutdown.** [`Client::flush`] sends what is queued and waits for every
//!   outcome; [`Client::close`] does the same and stops the sender. Nothing
//!   queued is lost. [`Client::enqueue`] sends without a receipt, for the
//!   highest rates; [`Client::stats`] counts outcomes either way.
//!
//! ```no_run
//! use eye_client::{Client, Event, Timestamp};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder()
//!     .gateway_url("http://127.0.0.1:8080")
//!     .hmac("demo", "eye_demo_secret")
//!     .build()?;
//! let session = uuid::Uuid::new_v4();
//! let mut receipts = Vec::new();
//! for path in ["/", "/about", "/contact"] {
//!     let event = Event::new(session, "party", "AppName", Timestamp::now())
//!         .with_data(serde_json::json!({"host": "www.party.com", "path": path}))
//!         .map_err(|_| "data must be an object")?;
//!     receipts.push(client.send(event).await?);
//! }
//! for receipt in receipts {
//!     match receipt.await {
//!         Ok(accepted) => println!("stored {}", accepted.event_id),
//!         Err(error) => eprintln!("not stored: {error}"),
//!     }
//! }
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Sending straight to NATS
//!
//! [`ClientBuilder::nats`] replaces the gateway by a JetStream connection:
//! each event is published to `eye.events.<client>.<category-token>` with
//! `Nats-Msg-Id` = `<client>:<event id>` (the same dedup id the gateway
//! uses), and accepted once JetStream acknowledged it. Same batching,
//! pipelining, retries and receipts; events are validated by the consumer
//! (invalid ones show up in [`Client::errors`]). Under the shipped NATS
//! permissions, connect as the client's NATS user with the inbox prefix
//! `_INBOX.<client id>` (see [`ClientBuilder::nats`]).
//!
//! # Reading
//!
//! With [`ClientBuilder::query_url`] and [`ClientBuilder::read_token`]:
//! [`Client::session_events`], and [`Client::events`], [`Client::sessions`]
//! and [`Client::errors`] as [`futures::Stream`]s that follow the service's
//! pagination cursors page by page.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use eye_client::{Client, EventFilter, Timestamp};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder()
//!     .query_url("http://127.0.0.1:8081")
//!     .read_token("eye_demo_read_token")
//!     .build()?;
//! let filter = EventFilter::default()
//!     .category("party")
//!     .from(Timestamp::parse("2021-09-26 00:00:00")?)
//!     .to(Timestamp::parse("2021-09-27 00:00:00")?);
//! let events: Vec<_> = client.events(filter).try_collect().await?;
//! println!("{} events", events.len());
//! # Ok(()) }
//! ```
//!
//! # Map of the modules
//!
//! `client.rs` ([`Client`], [`ClientBuilder`]), `event.rs` ([`Event`]),
//! `config.rs` ([`BatchConfig`], [`RetryPolicy`]), `receipt.rs`
//! ([`Receipt`], [`SendStats`]), `error.rs`, [`sign`] (HMAC), `sender.rs`
//! (queue, batcher, delivery tasks), `batch.rs` (the NDJSON buffer),
//! `transport.rs`, `gateway.rs` (HTTP) and `nats.rs` (JetStream), `query.rs`
//! (filters, rows, pages).

mod batch;
mod client;
mod config;
mod error;
mod event;
mod gateway;
mod nats;
mod query;
mod receipt;
mod sender;
pub mod sign;
mod transport;

pub use client::{Client, ClientBuilder, Credentials};
pub use config::{BatchConfig, RetryPolicy};
pub use error::{ClientError, Failure, QueryError, Rejection, SendError};
pub use event::Event;
pub use eye_contract::{ErrorCode, RetryCode, Timestamp};
pub use query::{
    ErrorFilter, EventFilter, Page, SessionFilter, SessionSummary, StoredEvent, StoredReject,
};
pub use receipt::{Accepted, Delivery, Receipt, SendStats};
pub use uuid::Uuid;
