//! Why a request failed, as one enum that knows its HTTP status and its
//! problem+json document (`eye_server_kit::problem`).
//!
//! The rule: the client's mistakes (a bad parameter, no token) are 4xx and
//! name what to fix; ClickHouse being slow or away is 503/504 with a hint to
//! retry; ClickHouse refusing a statement is a bug of ours (500), logged, and
//! never shows ClickHouse's message to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eye_server_kit::problem::Problem;
use serde_json::Value;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// A request the query service answers with a problem document.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter (query string or JSON body member) is missing its mark.
    #[error("parameter {parameter}: {message}")]
    BadParameter {
        /// The parameter's name, as sent.
        parameter: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The JSON body of a search cannot be read.
    #[error("the body is not a JSON object of search parameters: {0}")]
    BadBody(String),
    /// The search body is larger than allowed.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// No read token, or one the registry does not know.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The token's scope does not cover what was asked for.
    #[error("{0}")]
    Forbidden(String),
    /// Too many queries at once.
    #[error("too many queries are running; retry shortly")]
    Overloaded,
    /// The query did not finish in time.
    #[error("the query did not finish within {0:?}; narrow the time range or add filters")]
    Timeout(std::time::Duration),
    /// ClickHouse cannot be reached.
    #[error("the event store is unavailable; retry shortly")]
    Unavailable(String),
    /// Something that must not fail did (logged; the client sees no details).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A bad parameter.
    pub fn param(parameter: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } | ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Overloaded | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let (slug, title) = match self {
            ApiError::BadParameter { .. } => ("bad-parameter", "Bad parameter"),
            ApiError::BadBody(_) => ("bad-body", "Bad search body"),
            ApiError::BodyTooLarge(_) => ("body-too-large", "Body too large"),
            ApiError::Unauthenticated(_) => ("unauthenticated", "Not authenticated"),
            ApiError::Forbidden(_) => ("forbidden", "Not allowed"),
            ApiError::Overloaded => ("overloaded", "Too many queries"),
            ApiError::Timeout(_) => ("query-timeout", "Query timed out"),
            ApiError::Unavailable(_) => ("store-unavailable", "Event store unavailable"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        };
        let mut problem = Problem::new(self.status(), slug, title, self.to_string());
        match self {
            ApiError::BadParameter { parameter, .. } => {
                problem = problem.with("parameter", Value::from(parameter.as_str()));
            }
            ApiError::Unauthenticated(_) => problem.www_authenticate = true,
            ApiError::Overloaded | ApiError::Unavailable(_) => {
                problem.retry_after = Some(RETRY_AFTER_SECS);
            }
            _ => {}
        }
        problem
    }

    /// Classifies a ClickHouse failure: unreachable, too slow, or our bug.
    pub fn from_clickhouse(error: clickhouse::error::Error, timeout: std::time::Duration) -> Self {
        use clickhouse::error::Error;
        match error {
            Error::Network(e) => ApiError::Unavailable(e.to_string()),
            Error::TimedOut => ApiError::Timeout(timeout),
            Error::BadResponse(message) if is_timeout_exception(&message) => {
                ApiError::Timeout(timeout)
            }
            Error::BadResponse(message) if is_overload_exception(&message) => {
                ApiError::Unavailable(message)
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// ClickHouse's `TIMEOUT_EXCEEDED` (159): `max_execution_time` hit.
fn is_timeout_exception(message: &str) -> bool {
    message.contains("Code: 159") || message.contains("TIMEOUT_EXCEEDED")
}

/// Memory limit (241), too many simultaneous queries (202): try again later.
fn is_overload_exception(message: &str) -> bool {
    [
        "Code: 241",
        "Code: 202",
        "MEMORY_LIMIT_EXCEEDED",
        "TOO_MANY_SIMULTANEOUS_QUERIES",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "query failed"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "ClickHouse unavailable"),
            _ => {}
        }
        self.problem().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_name_the_parameter() {
        let problem = ApiError::param("from", "not a time").problem();
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert_eq!(problem.body["parameter"], "from");
        assert_eq!(problem.body["type"], "urn:the-eye:problem:bad-parameter");
    }

    #[test]
    fn clickhouse_failures_are_classified() {
        let t = std::time::Duration::from_secs(1);
        let timeout = clickhouse::error::Error::BadResponse(
            "Code: 159, e.displayText() = DB::Exception: Timeout exceeded".into(),
        );
        assert_eq!(ApiError::from_clickhouse(timeout, t).status(), 504);
        let bug = clickhouse::error::Error::BadResponse("Code: 62. Syntax error".into());
        assert_eq!(ApiError::from_clickhouse(bug, t).status(), 500);
    }
}
