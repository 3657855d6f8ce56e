//! Whole-request failures as `application/problem+json` (RFC 9457).
//!
//! The rule: a request fails as a whole only when no per-event answer is
//! possible — the body cannot be read or split into events, the sender is not
//! authenticated or not allowed, it is over its rate limit, or the broker took
//! none of its valid events. Everything else
//! is a per-event result (see `response.rs`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use eye_server_kit::problem::{Problem, PROBLEM_JSON};
use serde_json::Value;

/// Seconds a client should wait before resending after a retryable failure.
pub const RETRY_AFTER_SECS: u64 = 2;

/// A request the gateway answers with a problem document.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON (or not an array of JSON values) where JSON was
    /// promised; `offset` is the byte offset in the decoded body.
    #[error("{message} at byte offset {offset}")]
    MalformedBody {
        /// Where the body stops making sense, in bytes from its start (after gzip).
        offset: usize,
        /// What was expected there.
        message: String,
    },
    /// The body holds no event at all.
    #[error("the body holds no event: send one event object, an array of them, or NDJSON lines")]
    NoEvents,
    /// The gzip stream is corrupt.
    #[error("the gzip-encoded body cannot be decompressed: {0}")]
    BadGzip(String),
    /// The body could not be read from the connection.
    #[error("the body could not be read: {0}")]
    BodyRead(String),
    /// The body did not arrive in time.
    #[error("the body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// The body (compressed or decompressed) is larger than allowed.
    #[error("the body is larger than {limit} bytes{after}")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
        /// `" after decompression"` when the limit was hit while inflating.
        after: &'static str,
    },
    /// More events than one request may carry.
    #[error("the body holds more than {limit} events; send them in several requests")]
    TooManyEvents {
        /// The configured limit.
        limit: usize,
    },
    /// The `Content-Type` is not one the gateway reads.
    #[error("Content-Type {0} is not supported; use application/json (one event or an array) or application/x-ndjson")]
    UnsupportedMediaType(String),
    /// The `Content-Encoding` is not one the gateway reads.
    #[error("Content-Encoding {0} is not supported; use gzip or none")]
    UnsupportedEncoding(String),
    /// The sender is not authenticated: no credential, an unknown one, a bad
    /// signature or a timestamp outside the replay window. The message never
    /// quotes a credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential is valid but may not be used this way (a write key from
    /// an origin it does not allow, a preflight from an unknown origin).
    #[error("{0}")]
    Forbidden(String),
    /// The client sent more events than its rate limit allows.
    #[error("client {client:?} is over its rate limit of {per_second} events per second (burst {burst}); retry after {retry_after} s")]
    RateLimited {
        /// The client id.
        client: String,
        /// Its sustained rate.
        per_second: u32,
        /// Its burst.
        burst: u32,
        /// Seconds until the request would be admitted.
        retry_after: u64,
    },
    /// No schema for the category asked for.
    #[error("unknown category {0:?}; GET /v1/schemas lists the categories")]
    UnknownCategory(String),
    /// Work that must not fail did (a bug, not the client's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

impl RequestError {
    /// The HTTP status of the failure.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::MalformedBody { .. }
            | RequestError::NoEvents
            | RequestError::BadGzip(_)
            | RequestError::BodyRead(_) => StatusCode::BAD_REQUEST,
            RequestError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            RequestError::BodyTooLarge { .. } | RequestError::TooManyEvents { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            RequestError::UnsupportedMediaType(_) | RequestError::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            RequestError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            RequestError::Forbidden(_) => StatusCode::FORBIDDEN,
            RequestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            RequestError::UnknownCategory(_) => StatusCode::NOT_FOUND,
            RequestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document for the failure.
    pub fn problem(&self) -> Problem {
        let (slug, title) = match self {
            RequestError::MalformedBody { .. } => ("malformed-body", "Malformed body"),
            RequestError::NoEvents => ("no-events", "No events in the body"),
            RequestError::BadGzip(_) => ("bad-gzip", "Corrupt gzip body"),
            RequestError::BodyRead(_) => ("body-read", "Body could not be read"),
            RequestError::BodyTimeout(_) => ("body-timeout", "Body too slow"),
            RequestError::BodyTooLarge { .. } => ("body-too-large", "Body too large"),
            RequestError::TooManyEvents { .. } => ("too-many-events", "Too many events"),
            RequestError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported content type")
            }
            RequestError::UnsupportedEncoding(_) => {
                ("unsupported-encoding", "Unsupported content encoding")
            }
            RequestError::Unauthenticated(_) => ("unauthenticated", "Not authenticated"),
            RequestError::Forbidden(_) => ("forbidden", "Forbidden"),
            RequestError::RateLimited { .. } => ("rate-limited", "Rate limit exceeded"),
            RequestError::UnknownCategory(_) => ("unknown-category", "Unknown category"),
            RequestError::Internal(_) => ("internal", "Internal error"),
        };
        let mut problem = Problem::new(self.status(), slug, title, self.to_string());
        match self {
            RequestError::MalformedBody { offset, .. } => {
                problem = problem.with("offset", Value::from(*offset));
            }
            RequestError::Unauthenticated(_) => {
                problem.www_authenticate = true;
            }
            RequestError::RateLimited { retry_after, .. } => {
                problem.retry_after = Some(*retry_after);
            }
            _ => {}
        }
        problem
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        if let RequestError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error while handling a request");
        }
        self.problem().into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    #[test]
    fn malformed_bodies_carry_their_offset() {
        let problem = RequestError::MalformedBody {
            offset: 17,
            message: "expected ',' or ']'".to_owned(),
        }
        .problem();
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert_eq!(problem.body["offset"], 17);
        assert_eq!(problem.body["status"], 400);
        assert_eq!(problem.body["type"], "urn:the-eye:problem:malformed-body");
        assert!(problem.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("offset 17")));
    }

    #[test]
    fn statuses() {
        assert_eq!(
            RequestError::BodyTooLarge {
                limit: 1,
                after: ""
            }
            .status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            RequestError::UnsupportedMediaType("text/plain".into()).status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let response = RequestError::Unauthenticated("no key".to_owned()).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let response = RequestError::RateLimited {
            client: "a".to_owned(),
            per_second: 1,
            burst: 2,
            retry_after: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
