//! The answer to `POST /v1/events` and `POST /v1/validate`: one result per
//! event, in request order, as DESIGN.md shows:
//!
//! ```json
//! {"accepted": 1, "rejected": 1, "results": [
//!   {"index": 0, "status": "accepted", "event_id": "…"},
//!   {"index": 1, "status": "rejected", "code": "timestamp_in_future",
//!    "message": "…", "pointer": "/timestamp"}]}
//! ```
//!
//! A valid event the broker did not take is `"status": "failed"` with a
//! retryable [`RetryCode`] (and the top-level `"failed"` count, present only
//! when non-zero); resending it is safe.
//!
//! Status: 202 when at least one event was accepted (with `Retry-After` if
//! some failed), 422 when every event was rejected, and 503 problem+json —
//! carrying the same results as extension members — when nothing was accepted
//! and at least one valid event failed. `/v1/validate` answers 200 instead of
//! 202 (nothing was stored) and never fails an event.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use eye_contract::RetryCode;
use serde::Serialize;

use crate::check::Outcome;
use crate::problem::{Problem, RETRY_AFTER_SECS};

/// One event's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored durably (or, for `/v1/validate`, would be accepted).
    Accepted,
    /// Invalid; `code`, `message` and `pointer` say why. Do not resend as is.
    Rejected,
    /// Valid, but the broker did not take it; resend later.
    Failed,
}

/// One event's entry in `results`.
#[derive(Debug, Clone, Serialize)]
pub struct EventResult {
    /// The event's position in the request, from 0.
    pub index: usize,
    /// What happened to it.
    pub status: Status,
    /// The event's id (accepted and failed events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Why it was rejected or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// A human explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// JSON pointer to the offending part (rejected events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResponse {
    /// Events accepted.
    pub accepted: usize,
    /// Events rejected.
    pub rejected: usize,
    /// Valid events the broker did not take.
    #[serde(skip_serializing_if = "is_zero")]
    pub failed: usize,
    /// One result per event, in request order.
    pub results: Vec<EventResult>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl IngestResponse {
    /// Builds the answer from each event's outcome and, for the valid ones in
    /// order, whether the broker took it (`published` has one entry per valid
    /// event; a dry run passes all `Ok`).
    pub fn new(outcomes: Vec<Outcome>, published: Vec<Result<(), RetryCode>>) -> IngestResponse {
        let mut published = published.into_iter();
        let mut response = IngestResponse {
            accepted: 0,
            rejected: 0,
            failed: 0,
            results: Vec::with_capacity(outcomes.len()),
        };
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let result = match outcome {
                Outcome::Rejected(error) => {
                    response.rejected += 1;
                    EventResult {
                        index,
                        status: Status::Rejected,
                        event_id: None,
                        code: Some(error.code.as_str()),
                        message: Some(error.message),
                        pointer: Some(error.pointer),
                    }
                }
                Outcome::Valid(event) => {
                    let taken = published
                        .next()
                        .unwrap_or(Err(RetryCode::BrokerUnavailable));
                    match taken {
                        Ok(()) => {
                            response.accepted += 1;
                            EventResult {
                                index,
                                status: Status::Accepted,
                                event_id: Some(event.event_id),
                                code: None,
                                message: None,
                                pointer: None,
                            }
                        }
                        Err(code) => {
                            response.failed += 1;
                            EventResult {
                                index,
                                status: Status::Failed,
                                event_id: Some(event.event_id),
                                code: Some(code.as_str()),
                                message: Some(retry_message(code).to_owned()),
                                pointer: None,
                            }
                        }
                    }
                }
            };
            response.results.push(result);
        }
        response
    }

    /// The HTTP answer; `dry_run` for `/v1/validate`.
    pub fn into_http(self, dry_run: bool) -> Response {
        if self.accepted == 0 && self.failed > 0 {
            let detail = format!(
                "the broker took none of the {} valid events; resend them later (resending is safe)",
                self.failed
            );
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "broker-unavailable",
                "Events could not be stored",
                detail,
            );
            problem.retry_after = Some(RETRY_AFTER_SECS);
            return match serde_json::to_value(&self) {
                Ok(serde_json::Value::Object(members)) => members
                    .into_iter()
                    .fold(problem, |p, (name, value)| p.with(&name, value))
                    .into_response(),
                _ => problem.into_response(),
            };
        }
        let status = match (self.accepted > 0, dry_run) {
            (true, false) => StatusCode::ACCEPTED,
            (true, true) => StatusCode::OK,
            (false, _) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let retry = self.failed > 0;
        let mut response = (status, Json(self)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

fn retry_message(code: RetryCode) -> &'static str {
    match code {
        RetryCode::PublishTimeout => {
            "JetStream did not acknowledge the event in time; resend it (resending is safe)"
        }
        RetryCode::BrokerUnavailable => "the broker is unavailable; resend the event later",
        RetryCode::StreamFull => "the event stream is full; resend the event later",
        RetryCode::Overloaded => "the gateway is overloaded; resend the event later",
    }
}

#[cfg(test)]
mod tests {
    use eye_contract::{ErrorCode, Event, EventError, Timestamp};
    use serde_json::json;

    use super::*;

    fn event(id: &str) -> Outcome {
        Outcome::Valid(Event {
            event_id: id.to_owned(),
            session_id: uuid_nil(),
            category: "party".to_owned(),
            name: "n".to_owned(),
            data: serde_json::Map::new(),
            timestamp: Timestamp::from_micros(0),
        })
    }

    fn uuid_nil() -> uuid::Uuid {
        uuid::Uuid::nil()
    }

    fn rejected() -> Outcome {
        Outcome::Rejected(EventError::new(
            ErrorCode::TimestampInFuture,
            "too far ahead",
            "/timestamp",
        ))
    }

    #[test]
    fn results_follow_request_order_in_the_documented_shape() {
        let r = IngestResponse::new(vec![event("a"), rejected()], vec![Ok(())]);
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            json!({"accepted": 1, "rejected": 1, "results": [
                {"index": 0, "status": "accepted", "event_id": "a"},
                {"index": 1, "status": "rejected", "code": "timestamp_in_future",
                 "message": "too far ahead", "pointer": "/timestamp"}]})
        );
        assert_eq!(r.into_http(false).status(), StatusCode::ACCEPTED);
    }

    #[test]
    fn statuses() {
        let r = IngestResponse::new(vec![rejected()], vec![]);
        assert_eq!(
            r.into_http(false).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );

        let r = IngestResponse::new(
            vec![rejected(), event("b")],
            vec![Err(RetryCode::PublishTimeout)],
        );
        assert_eq!((r.rejected, r.failed), (1, 1));
        let response = r.into_http(false);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));

        let r = IngestResponse::new(
            vec![event("a"), event("b")],
            vec![Ok(()), Err(RetryCode::StreamFull)],
        );
        let response = r.into_http(false);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(response.headers().contains_key(header::RETRY_AFTER));

        let r = IngestResponse::new(vec![event("a")], vec![Ok(())]);
        assert_eq!(r.into_http(true).status(), StatusCode::OK);
    }
}
