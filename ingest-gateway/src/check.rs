//! From a request body to one verdict per event: decode, split, validate.
//!
//! CPU work only (gzip, JSON, schemas), so it runs on the blocking pool and
//! never holds up the async workers. Validation itself is the contract's
//! [`Validator`]; this module only applies it to each event of the body and
//! keeps a [`Reject`] record of each rejected one.

use eye_contract::{ErrorCode, Event, EventError, Reject, RejectSource, Timestamp, Validator};

use crate::body::{self, BodyLimits, Encoding, Format};
use crate::problem::RequestError;

/// One event's verdict.
#[derive(Debug)]
pub enum Outcome {
    /// Valid and normalized, ready to publish.
    Valid(Event),
    /// Rejected, with the reason.
    Rejected(EventError),
}

/// The verdicts of a request's events, in request order, and the reject
/// records of the rejected ones.
#[derive(Debug)]
pub struct Checked {
    /// One outcome per event.
    pub outcomes: Vec<Outcome>,
    /// One record per rejected event, for the rejects subject.
    pub rejects: Vec<Reject>,
}

/// A body as received, with how to read it.
#[derive(Debug)]
pub struct RawBody {
    /// The bytes as received.
    pub bytes: Vec<u8>,
    /// Its `Content-Encoding`.
    pub encoding: Encoding,
    /// Its `Content-Type`.
    pub format: Format,
}

/// Who sent the body and when, for the event ids and the reject records.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The contract's validator.
    pub validator: &'a Validator,
    /// The authenticated client.
    pub client: &'a str,
    /// Bytes of a rejected event kept in its reject record.
    pub raw_cap: usize,
    /// The time of the request, for the timestamp rules and `received_at`.
    pub now: Timestamp,
}

/// Decodes, splits and validates a body.
pub fn check(cx: &Context<'_>, raw: RawBody, limits: BodyLimits) -> Result<Checked, RequestError> {
    check_with(cx, raw, limits, &|_| true)
}

/// [`check`], rejecting otherwise valid events whose category `allowed`
/// refuses with `category_not_allowed` (the client's allow-list).
pub fn check_with(
    cx: &Context<'_>,
    raw: RawBody,
    limits: BodyLimits,
    allowed: &dyn Fn(&str) -> bool,
) -> Result<Checked, RequestError> {
    let decoded = body::decode(raw.bytes, raw.encoding, limits.max_body_bytes)?;
    let events = body::split(&decoded, raw.format, limits.max_events)?;
    let mut checked = Checked {
        outcomes: Vec::with_capacity(events.ranges.len()),
        rejects: Vec::new(),
    };
    for range in events.ranges {
        let bytes = &decoded[range.clone()];
        let verdict = cx
            .validator
            .validate_slice(cx.client, bytes, cx.now)
            .and_then(|event| {
                if allowed(&event.category) {
                    Ok(event)
                } else {
                    Err(EventError::new(
                        ErrorCode::CategoryNotAllowed,
                        format!(
                            "client {:?} may not send events of category {:?}; its allowed categories are set in the client registry",
                            cx.client, event.category
                        ),
                        "/category",
                    ))
                }
            });
        match verdict {
            Ok(event) => checked.outcomes.push(Outcome::Valid(event)),
            Err(error) if error.code == ErrorCode::InvalidJson && events.whole_body_json => {
                return Err(malformed_at(bytes, range.start));
            }
            Err(error) => {
                // Parse again only to pick the category and ids out for the record;
                // a too-deep event is not parsed at all.
                let parsed = (error.code != ErrorCode::TooDeep)
                    .then(|| serde_json::from_slice(bytes).ok())
                    .flatten();
                checked.rejects.push(Reject::new(
                    RejectSource::Gateway,
                    cx.client,
                    cx.now,
                    &error,
                    bytes,
                    parsed.as_ref(),
                    cx.raw_cap,
                ));
                checked.outcomes.push(Outcome::Rejected(error));
            }
        }
    }
    Ok(checked)
}

/// The 400 for an event of a JSON body that is not JSON, starting at `start`.
fn malformed_at(bytes: &[u8], start: usize) -> RequestError {
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Err(error) => RequestError::MalformedBody {
            offset: start + body::error_offset(bytes, &error),
            message: format!("invalid JSON ({})", error_kind(&error)),
        },
        // The validator and serde disagree: report the event's start.
        Ok(_) => RequestError::MalformedBody {
            offset: start,
            message: "invalid JSON".to_owned(),
        },
    }
}

/// serde's message without its "at line L column C" suffix (we give an offset).
fn error_kind(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use eye_contract::SchemaRegistry;

    use super::*;

    fn validator() -> Validator {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        Validator::new(Arc::new(SchemaRegistry::load_dir(dir).expect("schemas")))
    }

    const GOOD: &str = r#"{"session_id":"e2085be5-9137-4e4e-80b5-f1ffddc25423","category":"party","name":"App","data":{"host":"h","path":"/"},"timestamp":"2021-09-26 09:15:27.243860"}"#;

    fn run(body: &str, format: Format) -> Result<Checked, RequestError> {
        run_with(body, format, 10, &|_| true)
    }

    fn run_with(
        body: &str,
        format: Format,
        raw_cap: usize,
        allowed: &dyn Fn(&str) -> bool,
    ) -> Result<Checked, RequestError> {
        let validator = validator();
        let cx = Context {
            validator: &validator,
            client: "demo",
            raw_cap,
            now: Timestamp::now(),
        };
        let raw = RawBody {
            bytes: body.as_bytes().to_vec(),
            encoding: Encoding::Identity,
            format,
        };
        let limits = BodyLimits {
            max_body_bytes: 1 << 20,
            max_events: 100,
            read_timeout: std::time::Duration::from_secs(1),
        };
        check_with(&cx, raw, limits, allowed)
    }

    fn codes(checked: &Checked) -> Vec<Option<ErrorCode>> {
        checked
            .outcomes
            .iter()
            .map(|o| match o {
                Outcome::Valid(_) => None,
                Outcome::Rejected(e) => Some(e.code),
            })
            .collect()
    }

    #[test]
    fn bad_events_of_an_array_do_not_affect_their_neighbours() {
        let body = format!(r#"[{GOOD}, 7, {{"x": 1}}, {GOOD}]"#);
        let checked = run(&body, Format::Json).expect("checked");
        assert_eq!(
            codes(&checked),
            [
                None,
                Some(ErrorCode::InvalidType),
                Some(ErrorCode::UnknownField),
                None
            ]
        );
        assert_eq!(checked.rejects.len(), 2);
        assert_eq!(checked.rejects[1].raw, "{\"x\": 1}");
        assert_eq!(checked.rejects[0].client, "demo");
    }

    #[test]
    fn a_broken_element_makes_the_json_body_malformed_with_its_offset() {
        let body = format!(r#"[{GOOD}, {{"a": tru}}]"#);
        match run(&body, Format::Json) {
            Err(RequestError::MalformedBody { offset, message }) => {
                assert_eq!(&body[offset..offset + 1], "}", "{message} at {offset}");
                assert!(!message.contains("line"), "{message}");
            }
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn categories_outside_the_allow_list_are_rejected_per_event() {
        let body = format!("[{GOOD}, {GOOD}]");
        let checked = run_with(&body, Format::Json, 1000, &|c| c != "party").expect("checked");
        assert_eq!(
            codes(&checked),
            [
                Some(ErrorCode::CategoryNotAllowed),
                Some(ErrorCode::CategoryNotAllowed)
            ]
        );
        assert_eq!(checked.rejects.len(), 2);
        assert_eq!(
            checked.rejects[0].raw, GOOD,
            "the event as sent is recorded"
        );
        match &checked.outcomes[0] {
            Outcome::Rejected(e) => assert_eq!(e.pointer, "/category"),
            Outcome::Valid(_) => panic!("should be rejected"),
        }
    }

    #[test]
    fn a_broken_ndjson_line_is_its_own_invalid_json() {
        let body = format!("{GOOD}\n{{\"a\": truth}}\n{GOOD}\n");
        let checked = run(&body, Format::Ndjson).expect("checked");
        assert_eq!(codes(&checked), [None, Some(ErrorCode::InvalidJson), None]);
        assert!(checked.rejects[0].raw_truncated, "raw capped at 10 bytes");
    }
}
