//! The Eye's wire contract: the one place where the rules shared by the
//! gateway, the consumer, the query service and the client live.
//!
//! # Map of the modules
//!
//! - [`error`] — [`ErrorCode`] and [`EventError`]: why an event was
//!   rejected, with a JSON pointer to the culprit; [`RetryCode`]: why a valid
//!   event was not stored (retry it).
//! - [`timestamp`] — [`Timestamp`] (UTC microseconds), the wire timestamp
//!   parser and the RFC 3339 printer.
//! - [`time_rules`] — [`TimeRules`]: clock skew, the 1970 floor, optional
//!   maximum age.
//! - [`event`] — [`Event`], a validated and normalized event, and the wire
//!   field names.
//! - [`validator`] — [`Validator`]: bytes or JSON in, an `Event` or exactly
//!   one `EventError` out; the order of the rules is documented there.
//! - [`event_id`] — [`derive_event_id`] (content-derived idempotency key) and
//!   [`dedup_id`] (the JetStream `Nats-Msg-Id`).
//! - [`reject`] — [`Reject`]: the record of a rejected event, shared by the
//!   gateway's rejects subject and the consumer's `event_errors`.
//! - [`schema`] — [`SchemaRegistry`]: the categories and their compiled JSON
//!   Schemas, loaded from `schemas/`.
//! - [`subject`] — stream and subject names, the collision-free category →
//!   subject token rule, client ids.
//! - [`headers`] — NATS and HTTP header names.
//!
//! Rules live here exactly once; the services call them rather than
//! re-implementing them, so the gateway and the consumer can never disagree
//! on what a valid event is.

pub mod error;
pub mod event;
pub mod event_id;
pub mod headers;
pub mod reject;
pub mod schema;
pub mod subject;
pub mod time_rules;
pub mod timestamp;
pub mod validator;

pub use error::{ErrorCode, EventError, RetryCode};
pub use event::Event;
pub use event_id::{dedup_id, derive_event_id};
pub use reject::{Reject, RejectSource};
pub use schema::{RegistryError, SchemaRegistry};
pub use subject::{
    category_to_token, events_subject, parse_events_subject, token_to_category, validate_client_id,
    ClientIdError, EVENTS_STREAM, EVENTS_SUBJECTS, EVENTS_SUBJECT_PREFIX,
};
pub use time_rules::TimeRules;
pub use timestamp::{Timestamp, TimestampError};
pub use validator::{Limits, Validator};
