//! Problem details (`application/problem+json`, RFC 9457): the one shape every
//! Eye service uses for a request that failed as a whole.
//!
//! Each service keeps its own error enum (what went wrong at its boundary) and
//! turns it into a [`Problem`]; this module only owns the document and its
//! headers, so the services cannot drift apart on the format.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document and the headers that go with it.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status (also the `status` member).
    pub status: StatusCode,
    /// The members: `type` (`urn:the-eye:problem:<slug>`), `title`, `status`,
    /// `detail`, and any extension members.
    pub body: Map<String, Value>,
    /// Adds `Retry-After: <seconds>`: the failure is temporary.
    pub retry_after: Option<u64>,
    /// Adds `WWW-Authenticate: Bearer`: credentials are missing or wrong.
    pub www_authenticate: bool,
}

impl Problem {
    /// A problem of kind `slug` (the `type` is `urn:the-eye:problem:<slug>`).
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: String) -> Problem {
        let mut body = Map::new();
        body.insert(
            "type".to_owned(),
            Value::from(format!("urn:the-eye:problem:{slug}")),
        );
        body.insert("title".to_owned(), Value::from(title));
        body.insert("status".to_owned(), Value::from(status.as_u16()));
        body.insert("detail".to_owned(), Value::from(detail));
        Problem {
            status,
            body,
            retry_after: None,
            www_authenticate: false,
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, name: &str, value: Value) -> Problem {
        self.body.insert(name.to_owned(), value);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Value::Object(self.body).to_string();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"eye\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_and_its_headers() {
        let mut problem = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Busy",
            "try later".to_owned(),
        )
        .with("parameter", Value::from("limit"));
        problem.retry_after = Some(2);
        problem.www_authenticate = true;
        assert_eq!(problem.body["type"], "urn:the-eye:problem:busy");
        assert_eq!(problem.body["status"], 503);
        let response = problem.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
