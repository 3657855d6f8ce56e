//! The verdict on one stored reject: a pure function of the row and the
//! validator, so a replay decides like the consumer would for the same event
//! received at the same time.

use eye_contract::{validate_client_id, ErrorCode, EventError, Timestamp, Validator};
use serde::{Deserialize, Serialize};

use super::filter::NEVER_REPLAYED;
use crate::rows::EventRow;

/// A row of `consumer/sql/replay_candidates.sql`.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct Candidate {
    /// The reject's id.
    pub reject_id: String,
    /// `gateway` or `consumer`.
    pub source: String,
    /// The client that sent the event: the client of the replayed event.
    pub client_id: String,
    /// When the pipeline received the event; the replayed row keeps it, and
    /// the time rules are checked against it (as the consumer does).
    pub received_us: i64,
    /// The code it was rejected with.
    pub code: String,
    /// The message it was rejected with.
    pub message: String,
    /// The event's category as sent, or empty.
    pub category: String,
    /// The event as received, capped.
    pub raw: String,
    /// 1 when `raw` was cut.
    pub raw_truncated: u8,
}

/// Why a reject cannot be re-validated at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotReplayable {
    /// Only the first `--reject-raw-cap` bytes of the event were kept.
    RawTruncated,
    /// The raw body holds U+FFFD: the event may have had bytes that are not
    /// UTF-8, which were replaced when stored, so the text is not the event.
    RawNotUtf8,
    /// No valid client id was recorded (e.g. an unparsable NATS subject).
    NoClient,
    /// A code of [`NEVER_REPLAYED`].
    Code(ErrorCode),
}

impl NotReplayable {
    /// A stable label for the report.
    pub fn label(self) -> &'static str {
        match self {
            NotReplayable::RawTruncated => "raw_truncated",
            NotReplayable::RawNotUtf8 => "raw_not_utf8",
            NotReplayable::NoClient => "no_client",
            NotReplayable::Code(code) => code.as_str(),
        }
    }

    /// Why, in a sentence.
    pub fn reason(self) -> String {
        match self {
            NotReplayable::RawTruncated => {
                "only the first bytes of the event were kept (--reject-raw-cap); the client must send it again".to_owned()
            }
            NotReplayable::RawNotUtf8 => {
                "the stored body holds U+FFFD, so it may not be the bytes that were sent".to_owned()
            }
            NotReplayable::NoClient => "no valid client id was recorded with the reject".to_owned(),
            NotReplayable::Code(code) => {
                let why = NEVER_REPLAYED
                    .iter()
                    .find(|(never, _)| *never == code)
                    .map_or("", |(_, why)| why);
                format!("{code} rejects are never replayed: {why}")
            }
        }
    }
}

/// What a replay makes of one reject.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It passes validation now: this row may be stored.
    Passes(Box<EventRow>),
    /// It still fails validation.
    StillFails(EventError),
    /// It cannot be re-validated.
    NotReplayable(NotReplayable),
}

/// Re-validates `candidate` with `validator`.
pub fn judge(candidate: &Candidate, validator: &Validator) -> Verdict {
    if let Some((code, _)) = NEVER_REPLAYED
        .iter()
        .find(|(code, _)| code.as_str() == candidate.code)
    {
        return Verdict::NotReplayable(NotReplayable::Code(*code));
    }
    if candidate.raw_truncated != 0 {
        return Verdict::NotReplayable(NotReplayable::RawTruncated);
    }
    if candidate.raw.contains(char::REPLACEMENT_CHARACTER) {
        return Verdict::NotReplayable(NotReplayable::RawNotUtf8);
    }
    let client = candidate.client_id.as_str();
    if validate_client_id(client).is_err() {
        return Verdict::NotReplayable(NotReplayable::NoClient);
    }
    let received = Timestamp::from_micros(candidate.received_us);
    let checked = validator
        .validate_slice(client, candidate.raw.as_bytes(), received)
        .and_then(|event| EventRow::new(client, event, received));
    match checked {
        Ok(row) => Verdict::Passes(Box::new(row)),
        Err(error) => Verdict::StillFails(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn validator() -> Validator {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let registry = eye_contract::SchemaRegistry::load_dir(dir).expect("schemas");
        Validator::new(Arc::new(registry))
    }

    const EVENT: &str = r#"{"session_id":"e2085be5-9137-4e4e-80b5-f1ffddc25423","category":"party","name":"AppName","data":{"host":"www.party.com","path":"/"},"timestamp":"2021-09-26 09:15:27.243860"}"#;
    const RECEIVED_US: i64 = 1_632_647_800_000_000;

    fn candidate(code: &str, raw: &str) -> Candidate {
        Candidate {
            reject_id: "r1".into(),
            source: "consumer".into(),
            client_id: "demo".into(),
            received_us: RECEIVED_US,
            code: code.into(),
            message: "m".into(),
            category: "party".into(),
            raw: raw.into(),
            raw_truncated: 0,
        }
    }

    #[test]
    fn a_valid_event_passes_with_the_rejects_client_and_time() {
        let Verdict::Passes(row) = judge(&candidate("storage_failed", EVENT), &validator()) else {
            panic!("does not pass");
        };
        assert_eq!(row.client_id, "demo");
        assert_eq!(row.received_us, RECEIVED_US);
        assert_eq!(row.timestamp_us, 1_632_647_727_243_860);
        // The id the gateway or the consumer would have derived: stable.
        let Verdict::Passes(again) = judge(&candidate("schema_violation", EVENT), &validator())
        else {
            panic!("does not pass");
        };
        assert_eq!(row.event_id, again.event_id);
    }

    #[test]
    fn an_invalid_event_still_fails_with_its_code() {
        let raw = EVENT.replace("e2085be5-9137-4e4e-80b5-f1ffddc25423", "nope");
        let Verdict::StillFails(error) =
            judge(&candidate("invalid_session_id", &raw), &validator())
        else {
            panic!("passes");
        };
        assert_eq!(error.code, ErrorCode::InvalidSessionId);
        // Time rules count from when the event was received, not from now.
        let future = EVENT.replace("2021-09-26 09:15:27.243860", "2021-09-26 09:30:00");
        let Verdict::StillFails(error) =
            judge(&candidate("timestamp_in_future", &future), &validator())
        else {
            panic!("passes");
        };
        assert_eq!(error.code, ErrorCode::TimestampInFuture);
    }

    #[test]
    fn unreplayable_rejects_say_why() {
        let v = validator();
        let mut truncated = candidate("schema_violation", &EVENT[..40]);
        truncated.raw_truncated = 1;
        let mut no_client = candidate("schema_violation", EVENT);
        no_client.client_id = String::new();
        let cases = [
            (truncated, NotReplayable::RawTruncated),
            (
                candidate("invalid_json", "{\"a\":\"\u{FFFD}\"}"),
                NotReplayable::RawNotUtf8,
            ),
            (no_client, NotReplayable::NoClient),
            (
                candidate("category_not_allowed", EVENT),
                NotReplayable::Code(ErrorCode::CategoryNotAllowed),
            ),
            (
                candidate("invalid_subject", EVENT),
                NotReplayable::Code(ErrorCode::InvalidSubject),
            ),
        ];
        for (c, want) in cases {
            assert_eq!(judge(&c, &v), Verdict::NotReplayable(want), "{c:?}");
            assert!(!want.reason().is_empty());
        }
        assert!(NotReplayable::Code(ErrorCode::InvalidSubject)
            .reason()
            .contains("subject"));
    }
}
