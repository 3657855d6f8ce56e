//! Why an event was rejected: a stable machine-readable [`ErrorCode`], a
//! human message and an RFC 6901 JSON pointer to the offending part.
//!
//! The rule of this module: one rejected event gets exactly one
//! [`EventError`], and its `code` is part of the public contract (clients
//! branch on it, `event_errors` rows and metrics are labelled with it), so
//! codes are only ever added, never renamed.

use serde::{Deserialize, Serialize};

/// The reason an event was rejected; serialized in snake_case
/// (`"timestamp_in_future"`), which is also what [`ErrorCode::as_str`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The bytes are not a single JSON document.
    InvalidJson,
    /// A required top-level field is absent.
    MissingField,
    /// A top-level field that the wire format does not define.
    UnknownField,
    /// A value has the wrong JSON type (e.g. `data` is an array, or the event is not an object).
    InvalidType,
    /// `session_id` is not a hyphenated UUID.
    InvalidSessionId,
    /// `category` has no schema in the registry.
    UnknownCategory,
    /// `name` is empty, only whitespace, or too long.
    InvalidName,
    /// A client-supplied `event_id` breaks the id alphabet or length.
    InvalidEventId,
    /// `timestamp` is not in an accepted format or is not a real time of day.
    InvalidTimestamp,
    /// `timestamp` is further in the future than the allowed clock skew.
    TimestampInFuture,
    /// `timestamp` is before 1970-01-01 UTC or older than the configured maximum age.
    TimestampTooOld,
    /// The category's JSON Schema rejected the event.
    SchemaViolation,
    /// The event is larger than the configured maximum size.
    EventTooLarge,
    /// The event nests objects/arrays deeper than the configured maximum.
    TooDeep,
    /// A message published straight to NATS whose subject does not name a
    /// valid client and category (`eye.events.<client>.<category-token>`), or
    /// names another category than the event's. Only the consumer gives it.
    InvalidSubject,
    /// ClickHouse refused to store the event on every delivery (`MaxDeliver`);
    /// the message was parked on the dead-letter subject. Only the consumer gives it.
    StorageFailed,
    /// The sending client may not send events of this category (its
    /// `categories` allow-list in the client registry). Only the gateway gives it.
    CategoryNotAllowed,
}

impl ErrorCode {
    /// Every code, in declaration order; handy for pre-registering metric labels.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::InvalidJson,
        ErrorCode::MissingField,
        ErrorCode::UnknownField,
        ErrorCode::InvalidType,
        ErrorCode::InvalidSessionId,
        ErrorCode::UnknownCategory,
        ErrorCode::InvalidName,
        ErrorCode::InvalidEventId,
        ErrorCode::InvalidTimestamp,
        ErrorCode::TimestampInFuture,
        ErrorCode::TimestampTooOld,
        ErrorCode::SchemaViolation,
        ErrorCode::EventTooLarge,
        ErrorCode::TooDeep,
        ErrorCode::InvalidSubject,
        ErrorCode::StorageFailed,
        ErrorCode::CategoryNotAllowed,
    ];

    /// The snake_case wire spelling of the code, identical to its serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidType => "invalid_type",
            ErrorCode::InvalidSessionId => "invalid_session_id",
            ErrorCode::UnknownCategory => "unknown_category",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidEventId => "invalid_event_id",
            ErrorCode::InvalidTimestamp => "invalid_timestamp",
            ErrorCode::TimestampInFuture => "timestamp_in_future",
            ErrorCode::TimestampTooOld => "timestamp_too_old",
            ErrorCode::SchemaViolation => "schema_violation",
            ErrorCode::EventTooLarge => "event_too_large",
            ErrorCode::TooDeep => "too_deep",
            ErrorCode::InvalidSubject => "invalid_subject",
            ErrorCode::StorageFailed => "storage_failed",
            ErrorCode::CategoryNotAllowed => "category_not_allowed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a *valid* event was not stored: the broker did not take it. Not an
/// [`ErrorCode`] on purpose — it is no verdict on the event, it is never
/// recorded in `event_errors`, and resending the same event is safe (the
/// JetStream duplicate window and the derived event id make a resend
/// idempotent). Clients branch on it to retry, so codes are only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryCode {
    /// JetStream did not acknowledge the event within the publish timeout.
    PublishTimeout,
    /// The broker is unreachable or has no stream for the event's subject.
    BrokerUnavailable,
    /// The stream is full and refuses new events until space is freed.
    StreamFull,
    /// The gateway has too many publishes in flight; it pushes back instead of queueing.
    Overloaded,
}

impl RetryCode {
    /// Every code, in declaration order; handy for pre-registering metric labels.
    pub const ALL: [RetryCode; 4] = [
        RetryCode::PublishTimeout,
        RetryCode::BrokerUnavailable,
        RetryCode::StreamFull,
        RetryCode::Overloaded,
    ];

    /// The snake_case wire spelling of the code, identical to its serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            RetryCode::PublishTimeout => "publish_timeout",
            RetryCode::BrokerUnavailable => "broker_unavailable",
            RetryCode::StreamFull => "stream_full",
            RetryCode::Overloaded => "overloaded",
        }
    }
}

impl std::fmt::Display for RetryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rejected event: what rule failed, a message for humans and where.
///
/// `pointer` is an RFC 6901 JSON pointer into the submitted event
/// (`"/timestamp"`, `"/data/host"`); `""` means the whole event. For a missing
/// field it points where the field should have been.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct EventError {
    /// The machine-readable reason.
    pub code: ErrorCode,
    /// A message that says what was wrong and, where possible, what is expected.
    pub message: String,
    /// RFC 6901 pointer to the offending value; `""` for the whole event.
    pub pointer: String,
}

impl EventError {
    /// Builds an error from its three parts.
    pub fn new(code: ErrorCode, message: impl Into<String>, pointer: impl Into<String>) -> Self {
        EventError {
            code,
            message: message.into(),
            pointer: pointer.into(),
        }
    }
}

/// Escapes one reference token for a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn escape_pointer_token(token: &str) -> String {
    // The common case (no `~` or `/`) copies once, without scanning twice.
    if !token.contains(['~', '/']) {
        return token.to_owned();
    }
    token.replace('~', "~0").replace('/', "~1")
}

/// The pointer to a top-level field, e.g. `field_pointer("data")` = `"/data"`.
pub fn field_pointer(field: &str) -> String {
    format!("/{}", escape_pointer_token(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_for_every_code() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn retry_codes_as_str_matches_serde_and_never_clashes_with_error_codes() {
        for code in RetryCode::ALL {
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(ErrorCode::ALL.iter().all(|e| e.as_str() != code.as_str()));
        }
    }

    #[test]
    fn event_error_displays_its_message_and_serializes_all_parts() {
        let e = EventError::new(ErrorCode::TooDeep, "too deep", "");
        assert_eq!(e.to_string(), "too deep");
        let v = serde_json::to_value(&e).expect("serialize");
        assert_eq!(
            v,
            serde_json::json!({"code": "too_deep", "message": "too deep", "pointer": ""})
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(escape_pointer_token("plain"), "plain");
        assert_eq!(escape_pointer_token("a/b~c"), "a~1b~0c");
        assert_eq!(field_pointer("x/y"), "/x~1y");
    }
}
