//! The HTTP transport: one `POST /v1/events` (NDJSON, optionally gzip,
//! Bearer or HMAC) per attempt, and how its answer maps to each event.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eye_contract::headers::{HTTP_CLIENT, HTTP_SIGNATURE, HTTP_TIMESTAMP};
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;

use crate::batch::Batch;
use crate::error::{Failure, Rejection};
use crate::sign;
use crate::transport::{Attempt, Outcome};

/// How requests are authenticated.
#[derive(Clone)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <write key>`, prepared once.
    Bearer(HeaderValue),
    /// HMAC-signed requests.
    Hmac {
        client: HeaderValue,
        secret: Arc<[u8]>,
    },
}

/// Sends batches to the gateway.
pub(crate) struct GatewayTransport {
    pub(crate) http: reqwest::Client,
    /// `<gateway>/v1/events`.
    pub(crate) url: reqwest::Url,
    pub(crate) auth: Auth,
    pub(crate) gzip: bool,
    pub(crate) timeout: Duration,
}

/// The gateway's answer to `POST /v1/events` (also the members of its 503
/// problem document when no event could be published).
#[derive(Debug, Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    results: Vec<WireResult<'a>>,
}

#[derive(Debug, Deserialize)]
struct WireResult<'a> {
    index: usize,
    /// Borrowed from the body unless escaped: one allocation less per event.
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    pointer: Option<String>,
}

const NDJSON: HeaderValue = HeaderValue::from_static("application/x-ndjson");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");

impl GatewayTransport {
    /// Sends the events at `pending` (indices into `batch`) once.
    pub(crate) async fn attempt(&self, batch: &Batch, pending: &[usize]) -> Attempt {
        let mut body = batch.body_of(pending);
        if self.gzip {
            match gzip(&body) {
                Ok(compressed) => body = compressed,
                Err(error) => {
                    return Attempt::Retry {
                        failure: Failure::Transport(format!("gzip: {error}").into()),
                        retry_after: None,
                    };
                }
            }
        }
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, NDJSON);
        if self.gzip {
            request = request.header(CONTENT_ENCODING, GZIP);
        }
        request = match &self.auth {
            Auth::Bearer(value) => request.header(AUTHORIZATION, value.clone()),
            Auth::Hmac { client, secret } => {
                let now = sign::unix_now();
                request
                    .header(HTTP_CLIENT, client.clone())
                    .header(HTTP_TIMESTAMP, now)
                    .header(HTTP_SIGNATURE, sign::signature(secret, now, &body))
            }
        };
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(error) => {
                return Attempt::Retry {
                    failure: transport_failure(&error),
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                return Attempt::Retry {
                    failure: transport_failure(&error),
                    retry_after,
                };
            }
        };
        interpret(status, &bytes, pending.len(), retry_after)
    }
}

/// Maps one HTTP answer to an [`Attempt`] for `n` events.
fn interpret(status: u16, body: &[u8], n: usize, retry_after: Option<Duration>) -> Attempt {
    match status {
        200 | 202 | 422 => match serde_json::from_slice::<Answer>(body) {
            Ok(answer) => per_event(answer, n, retry_after),
            Err(error) => Attempt::Retry {
                failure: Failure::Protocol(
                    format!("HTTP {status} with an unreadable body: {error}").into(),
                ),
                retry_after,
            },
        },
        // A 503 with results: nothing was accepted, but rejects are final.
        503 => match serde_json::from_slice::<Answer>(body) {
            Ok(answer) => per_event(answer, n, retry_after),
            Err(_) => Attempt::Retry {
                failure: Failure::Status(status),
                retry_after,
            },
        },
        408 | 429 | 500 | 502 | 504 => Attempt::Retry {
            failure: Failure::Status(status),
            retry_after,
        },
        413 => Attempt::TooLarge {
            status,
            detail: detail(body),
        },
        _ => Attempt::Refused {
            status,
            detail: detail(body),
        },
    }
}

/// One outcome per event from the `results` array.
fn per_event(answer: Answer, n: usize, retry_after: Option<Duration>) -> Attempt {
    let mut outcomes: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
    for result in answer.results {
        let Some(slot) = outcomes.get_mut(result.index) else {
            continue;
        };
        *slot = Some(match &*result.status {
            "accepted" => Outcome::Accepted(result.event_id.unwrap_or_default()),
            "rejected" => Outcome::Rejected(Rejection {
                code: result.code.unwrap_or_default(),
                message: result.message.unwrap_or_default(),
                pointer: result.pointer.unwrap_or_default(),
            }),
            // "failed", and any status a newer gateway may add: resending is safe.
            _ => Outcome::Retry(Failure::Retry(
                result.code.unwrap_or_else(|| result.status.into_owned()),
            )),
        });
    }
    Attempt::PerEvent {
        outcomes: outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Outcome::Retry(Failure::Protocol(
                        "the answer has no result for this event".into(),
                    ))
                })
            })
            .collect(),
        retry_after,
    }
}

/// The `detail` of a problem document, or the start of the body.
fn detail(body: &[u8]) -> Arc<str> {
    #[derive(Deserialize)]
    struct Problem {
        detail: Option<String>,
        title: Option<String>,
    }
    match serde_json::from_slice::<Problem>(body) {
        Ok(Problem {
            detail: Some(d), ..
        }) => d.into(),
        Ok(Problem { title: Some(t), .. }) => t.into(),
        _ => {
            let end = body.len().min(300);
            String::from_utf8_lossy(&body[..end]).into()
        }
    }
}

fn transport_failure(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Timeout
    } else {
        // The chain says what went wrong (connection refused, reset, ...).
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        Failure::Transport(text.into())
    }
}

fn gzip(body: &[u8]) -> std::io::Result<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(body)?;
    Ok(Bytes::from(encoder.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(a: Attempt) -> Vec<Outcome> {
        match a {
            Attempt::PerEvent { outcomes, .. } => outcomes,
            other => panic!("expected per-event outcomes, got {other:?}"),
        }
    }

    #[test]
    fn per_event_results_follow_their_index() {
        let body = br#"{"accepted": 1, "rejected": 1, "failed": 1, "results": [
            {"index": 2, "status": "failed", "event_id": "c", "code": "publish_timeout", "message": "m"},
            {"index": 0, "status": "accepted", "event_id": "a"},
            {"index": 1, "status": "rejected", "code": "timestamp_in_future", "message": "late", "pointer": "/timestamp"}]}"#;
        let o = outcomes(interpret(202, body, 3, None));
        assert_eq!(o[0], Outcome::Accepted("a".into()));
        assert_eq!(
            o[1],
            Outcome::Rejected(Rejection {
                code: "timestamp_in_future".into(),
                message: "late".into(),
                pointer: "/timestamp".into()
            })
        );
        assert_eq!(
            o[2],
            Outcome::Retry(Failure::Retry("publish_timeout".into()))
        );
    }

    #[test]
    fn missing_results_are_retried_not_lost() {
        let body = br#"{"results": [{"index": 0, "status": "accepted", "event_id": "a"}]}"#;
        let o = outcomes(interpret(202, body, 2, None));
        assert!(matches!(o[1], Outcome::Retry(Failure::Protocol(_))));
    }

    #[test]
    fn whole_request_statuses() {
        let problem = br#"{"type": "urn:x", "title": "Not authenticated", "status": 401, "detail": "unknown write key"}"#;
        match interpret(401, problem, 1, None) {
            Attempt::Refused { status, detail } => {
                assert_eq!((status, &*detail), (401, "unknown write key"))
            }
            other => panic!("{other:?}"),
        }
        for status in [408, 429, 500, 502, 504] {
            assert!(matches!(
                interpret(status, b"", 1, None),
                Attempt::Retry { failure: Failure::Status(s), .. } if s == status
            ));
        }
        // 503 without results (broker down before validation): retry everything.
        assert!(matches!(
            interpret(503, problem, 1, Some(Duration::from_secs(2))),
            Attempt::Retry {
                failure: Failure::Status(503),
                retry_after: Some(_)
            }
        ));
        // 503 carrying results: rejects are final, failures retried.
        let body = br#"{"status": 503, "results": [{"index": 0, "status": "rejected", "code": "x", "message": "m", "pointer": ""},
                       {"index": 1, "status": "failed", "code": "broker_unavailable"}]}"#;
        let o = outcomes(interpret(503, body, 2, None));
        assert!(matches!(o[0], Outcome::Rejected(_)));
        assert!(matches!(o[1], Outcome::Retry(_)));
        assert!(matches!(
            interpret(413, b"too big", 2, None),
            Attempt::TooLarge { status: 413, .. }
        ));
        assert!(matches!(
            interpret(202, b"not json", 1, None),
            Attempt::Retry {
                failure: Failure::Protocol(_),
                ..
            }
        ));
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"{\"a\":1}\n".repeat(100);
        let compressed = gzip(&body).expect("gzip");
        assert!(compressed.len() < body.len());
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut out)
            .expect("gunzip");
        assert_eq!(out, body);
    }
}
