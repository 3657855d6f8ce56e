//! Typed errors: [`ClientError`] (building and using the client),
//! [`SendError`] (why one event was not stored) and [`QueryError`] (a read
//! that failed).

use std::sync::Arc;

use eye_contract::{ErrorCode, RetryCode};

/// Building or using the client failed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let error = eye_client::Client::builder().gateway_url("ftp://x").write_key("k").build();
/// assert!(matches!(error, Err(eye_client::ClientError::InvalidUrl { .. })));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A URL given to the builder does not parse or is not http(s).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A builder setting is out of range or settings contradict each other.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// `send` was called on a client built without a gateway URL or NATS connection.
    #[error("this client has no sender: give the builder a gateway URL or a NATS connection")]
    NoSender,
    /// `build` was called outside a Tokio runtime (the sender runs as a task).
    #[error("no Tokio runtime: build the client from inside a Tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
    /// The client was closed ([`crate::Client::close`]); nothing more is sent.
    #[error("the client is closed")]
    Closed,
}

/// Why one event was not stored.
///
/// [`SendError::Rejected`] is a verdict on the event (do not resend it as
/// is); the others are about delivery.
///
/// ```no_run
/// # async fn example(client: eye_client::Client, event: eye_client::Event) -> Result<(), eye_client::ClientError> {
/// use eye_client::SendError;
/// match client.send(event).await?.await {
///     Ok(accepted) => println!("stored as {}", accepted.event_id),
///     Err(SendError::Rejected(r)) => eprintln!("invalid ({}) at {}: {}", r.code, r.pointer, r.message),
///     Err(other) => eprintln!("not stored, resend later: {other}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The gateway found the event invalid.
    #[error("{0}")]
    Rejected(Rejection),
    /// Every attempt failed with a retryable failure; `last` is the last one.
    #[error("gave up after {attempts} attempts; last failure: {last}")]
    GaveUp {
        /// Attempts made, the first included.
        attempts: u32,
        /// The failure of the last attempt.
        last: Failure,
    },
    /// The gateway refused the whole request with a status that retrying
    /// cannot fix (400, 401, 403, 413 for a single event, 415, ...).
    #[error("the request was refused with HTTP {status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The problem document's `detail` (or the body's start).
        detail: Arc<str>,
    },
    /// The client stopped before the event's outcome was known (its runtime
    /// shut down, or the event could not be serialized).
    #[error("the event's outcome is unknown: {0}")]
    Abandoned(Arc<str>),
}

/// An event the gateway rejected: its code, a message and where.
///
/// ```
/// let r = eye_client::Rejection {
///     code: "timestamp_in_future".into(),
///     message: "more than 5 minutes ahead".into(),
///     pointer: "/timestamp".into(),
/// };
/// assert!(r.to_string().contains("/timestamp"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rejected ({code}) at {pointer:?}: {message}")]
pub struct Rejection {
    /// The machine-readable reason as sent (`"timestamp_in_future"`).
    pub code: String,
    /// What was wrong.
    pub message: String,
    /// An RFC 6901 pointer into the event; `""` for the whole event.
    pub pointer: String,
}

impl Rejection {
    /// The code as the contract's [`ErrorCode`], or `None` for a code this
    /// version of the client does not know (codes are only ever added).
    ///
    /// ```
    /// use eye_client::{ErrorCode, Rejection};
    /// let r = Rejection { code: "schema_violation".into(), message: String::new(), pointer: "/data".into() };
    /// assert_eq!(r.error_code(), Some(ErrorCode::SchemaViolation));
    /// ```
    pub fn error_code(&self) -> Option<ErrorCode> {
        serde_json::from_value(serde_json::Value::String(self.code.clone())).ok()
    }
}

/// A retryable failure of one attempt.
///
/// ```
/// let error = eye_client::SendError::GaveUp { attempts: 11, last: eye_client::Failure::Status(503) };
/// assert_eq!(error.to_string(), "gave up after 11 attempts; last failure: HTTP 503");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The gateway answered the event `"status": "failed"` with this code.
    #[error("the broker did not take the event ({0})")]
    Retry(String),
    /// A retryable HTTP status (408, 429, 5xx) for the whole request.
    #[error("HTTP {0}")]
    Status(u16),
    /// The request or publish did not complete in time.
    #[error("timed out")]
    Timeout,
    /// The connection failed or broke.
    #[error("transport error: {0}")]
    Transport(Arc<str>),
    /// The answer could not be understood (the request may have been stored;
    /// resending is safe).
    #[error("unreadable answer: {0}")]
    Protocol(Arc<str>),
}

impl Failure {
    /// The retry code as the contract's [`RetryCode`], when the failure is one.
    ///
    /// ```
    /// use eye_client::{Failure, RetryCode};
    /// assert_eq!(Failure::Retry("publish_timeout".into()).retry_code(), Some(RetryCode::PublishTimeout));
    /// assert_eq!(Failure::Status(503).retry_code(), None);
    /// ```
    pub fn retry_code(&self) -> Option<RetryCode> {
        match self {
            Failure::Retry(code) => {
                serde_json::from_value(serde_json::Value::String(code.clone())).ok()
            }
            _ => None,
        }
    }
}

/// A read from the query service failed.
///
/// ```no_run
/// # async fn example(client: eye_client::Client) {
/// match client.session_events(uuid::Uuid::nil()).await {
///     Ok(events) => println!("{} events", events.len()),
///     Err(eye_client::QueryError::Status { status: 401, .. }) => eprintln!("wrong read token"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The client was built without a query URL or read token.
    #[error("this client cannot read: give the builder a query URL and a read token")]
    NotConfigured,
    /// The query service answered with an error status.
    #[error("the query service answered HTTP {status}: {detail}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The problem document's `detail` (or the body's start).
        detail: String,
        /// The parameter the service named as wrong (400 answers), if any.
        parameter: Option<String>,
    },
    /// The request failed on the way.
    #[error("request to the query service failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer is not what the API documents.
    #[error("unreadable answer from the query service: {0}")]
    Decode(String),
    /// A parameter cannot be put into a URL.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_are_kept_as_text() {
        let r = Rejection {
            code: "brand_new_code".into(),
            message: "m".into(),
            pointer: String::new(),
        };
        assert_eq!(r.error_code(), None);
        assert!(
            SendError::Rejected(r)
                .to_string()
                .contains("brand_new_code")
        );
        assert_eq!(Failure::Retry("nope".into()).retry_code(), None);
    }
}
