//! [`Reject`]: the record of one rejected event, as the gateway publishes it on
//! `eye.rejects.<client>` and as the consumer stores it in `event_errors`.
//!
//! Both the gateway and the consumer reject events, and operators look at both kinds in
//! one table, so the record has one shape for both. The raw body is capped: a reject
//! must never cost more to keep than the event it stands for.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{ErrorCode, EventError};
use crate::timestamp::Timestamp;

/// Default cap on the raw body kept with a reject, in bytes.
pub const DEFAULT_RAW_CAP: usize = 4096;

/// Which part of the pipeline rejected the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectSource {
    /// The ingest gateway, while answering the HTTP request.
    Gateway,
    /// The consumer, for events published straight to NATS or that failed storage.
    Consumer,
}

/// One rejected event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reject {
    /// The id of this reject, fixed when it is made, so a redelivered reject
    /// message is stored once. Derived from what was rejected and why (see
    /// [`Reject::new`]), so a resent request records its rejects once too.
    pub reject_id: String,
    /// Who rejected it.
    pub source: RejectSource,
    /// The authenticated client that sent it.
    pub client: String,
    /// When the pipeline received it.
    pub received_at: Timestamp,
    /// Why it was rejected.
    pub code: ErrorCode,
    /// The human explanation.
    pub message: String,
    /// JSON pointer to the offending part of the event.
    pub pointer: String,
    /// The event's `category`, when it had a string one.
    pub category: Option<String>,
    /// The event's `session_id` as sent, when it had a string one (it may be invalid).
    pub session_id: Option<String>,
    /// The event's `event_id` as sent, when it had a string one.
    pub event_id: Option<String>,
    /// The event as received, cut to the configured cap (lossy UTF-8).
    pub raw: String,
    /// Whether `raw` was cut.
    pub raw_truncated: bool,
}

impl Reject {
    /// Records `error` for the event `raw` sent by `client`. `parsed` is the event as
    /// JSON when it could be parsed, used to pick out its category, session and id.
    ///
    /// The reject id is a pure function of the source, the client, the error's code
    /// and pointer and the whole raw event (a UUID v8 from SHA-256 over them, each
    /// length-prefixed, under the tag `eye-reject-id/v1`), the rule event ids follow:
    /// the same bytes rejected again for the same reason (a client resending a
    /// request it got no answer to) get the same id, and JetStream's duplicate
    /// window keeps the record once. Unlike event ids it is taken over the bytes as
    /// sent, since a rejected event may not parse.
    pub fn new(
        source: RejectSource,
        client: &str,
        received_at: Timestamp,
        error: &EventError,
        raw: &[u8],
        parsed: Option<&Value>,
        raw_cap: usize,
    ) -> Reject {
        let field = |name: &str| {
            parsed
                .and_then(|value| value.get(name))
                .and_then(Value::as_str)
                .map(|text| cap_str(text, 256).to_string())
        };
        let raw_truncated = raw.len() > raw_cap;
        let kept = &raw[..raw.len().min(raw_cap)];
        Reject {
            reject_id: reject_id(source, client, error, raw),
            source,
            client: client.to_string(),
            received_at,
            code: error.code,
            message: error.message.clone(),
            pointer: error.pointer.clone(),
            category: field("category"),
            session_id: field("session_id"),
            event_id: field("event_id"),
            raw: String::from_utf8_lossy(kept).into_owned(),
            raw_truncated,
        }
    }
}

/// The derived reject id; see [`Reject::new`].
fn reject_id(source: RejectSource, client: &str, error: &EventError, raw: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"eye-reject-id/v1\0");
    let source = match source {
        RejectSource::Gateway => "gateway",
        RejectSource::Consumer => "consumer",
    };
    for part in [
        source.as_bytes(),
        client.as_bytes(),
        error.code.as_str().as_bytes(),
        error.pointer.as_bytes(),
        raw,
    ] {
        hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// The longest prefix of `text` that is at most `max` bytes and ends on a char boundary.
fn cap_str(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error() -> EventError {
        EventError::new(ErrorCode::TimestampInFuture, "too far ahead", "/timestamp")
    }

    #[test]
    fn picks_out_known_fields_and_caps_the_raw_body() {
        let raw = br#"{"session_id":"NOT-A-UUID","category":"party","event_id":"e1","pad":"xxxxxxxxxxxxxxxx"}"#;
        let parsed: Value = serde_json::from_slice(raw).unwrap();
        let reject = Reject::new(
            RejectSource::Gateway,
            "demo",
            Timestamp::from_micros(5),
            &error(),
            raw,
            Some(&parsed),
            20,
        );
        assert_eq!(reject.category.as_deref(), Some("party"));
        assert_eq!(reject.session_id.as_deref(), Some("NOT-A-UUID"));
        assert_eq!(reject.event_id.as_deref(), Some("e1"));
        assert_eq!(reject.raw.len(), 20);
        assert!(reject.raw_truncated);
        assert_eq!(reject.code, ErrorCode::TimestampInFuture);
        assert_eq!(reject.pointer, "/timestamp");
    }

    #[test]
    fn unparsable_and_non_utf8_bodies_are_kept_lossily() {
        let raw = b"{\"category\": \xff\xfe";
        let reject = Reject::new(
            RejectSource::Consumer,
            "demo",
            Timestamp::from_micros(0),
            &error(),
            raw,
            None,
            4096,
        );
        assert_eq!(reject.category, None);
        assert!(!reject.raw_truncated);
        assert!(reject.raw.starts_with("{\"category\": "));
    }

    fn gateway_reject(client: &str, at: i64, error: &EventError, raw: &[u8]) -> Reject {
        Reject::new(
            RejectSource::Gateway,
            client,
            Timestamp::from_micros(at),
            error,
            raw,
            None,
            10,
        )
    }

    #[test]
    fn round_trips_through_json() {
        let a = gateway_reject("demo", 1, &error(), b"{}");
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"source\":\"gateway\""), "{json}");
        assert_eq!(serde_json::from_str::<Reject>(&json).unwrap(), a);
    }

    #[test]
    fn the_same_bytes_rejected_for_the_same_reason_get_the_same_id() {
        let raw = br#"{"category":"party","pad":"beyond the raw cap of ten bytes"}"#;
        let first = gateway_reject("demo", 1, &error(), raw);
        // Resent later: the received time does not enter the id.
        let resent = gateway_reject("demo", 9_000_000, &error(), raw);
        assert_eq!(first.reject_id, resent.reject_id);
        assert!(uuid::Uuid::parse_str(&first.reject_id).is_ok());

        // Anything else that differs gives another id, bytes past the raw cap too.
        let mut longer = raw.to_vec();
        longer.insert(longer.len() - 2, b'!');
        let other_pointer = EventError::new(ErrorCode::TimestampInFuture, "too far ahead", "/data");
        let other_code = EventError::new(ErrorCode::SchemaViolation, "too far ahead", "/timestamp");
        let others = [
            gateway_reject("shop", 1, &error(), raw),
            gateway_reject("demo", 1, &error(), &longer),
            gateway_reject("demo", 1, &other_pointer, raw),
            gateway_reject("demo", 1, &other_code, raw),
            Reject::new(
                RejectSource::Consumer,
                "demo",
                Timestamp::from_micros(1),
                &error(),
                raw,
                None,
                10,
            ),
        ];
        for other in &others {
            assert_ne!(other.reject_id, first.reject_id, "{other:?}");
        }
    }

    #[test]
    fn capping_respects_char_boundaries() {
        assert_eq!(cap_str("héllo", 2), "h");
        assert_eq!(cap_str("abc", 10), "abc");
    }
}
