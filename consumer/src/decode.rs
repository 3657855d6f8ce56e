//! What to do with one message: store it as an event, record it as a reject,
//! or park it as a dead letter. Pure functions of the message (subject, body,
//! stream sequence, time JetStream stored it), so a redelivery decides the same.
//!
//! The client id comes from the subject (`eye.events.<client>.<token>`), never
//! from a header: NATS permissions bind a publisher to its subjects, while any
//! publisher can write any header.

use eye_contract::subject::parse_rejects_subject;
use eye_contract::{
    parse_events_subject, validate_client_id, ErrorCode, EventError, Reject, RejectSource,
    Timestamp, Validator,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::rows::{source_name, ErrorRow, EventRow};

/// Where a message sits in its stream, and when it was stored there.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The stream's name.
    pub stream: String,
    /// The stream sequence.
    pub sequence: u64,
    /// How many times JetStream has delivered it (1 on the first delivery).
    pub delivered: i64,
    /// When JetStream stored it: the event's "received" time.
    pub received: Timestamp,
}

/// The decision for one message.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A valid event: a row for `events`.
    Store(EventRow),
    /// A rejected event: a row for `event_errors`, then ack.
    Reject(ErrorRow),
    /// Not processable at all: park it on the dead-letter subject, record the
    /// row in `event_errors`, then ack.
    DeadLetter(ErrorRow),
}

/// Makes the decisions; holds the validator and the raw-body cap. The
/// pipeline makes one per batch, with the schemas in force then.
#[derive(Debug, Clone)]
pub struct Decoder {
    validator: Validator,
    raw_cap: usize,
}

impl Decoder {
    /// A decoder validating with `validator` and keeping `raw_cap` bytes of raw bodies.
    pub fn new(validator: Validator, raw_cap: usize) -> Decoder {
        Decoder { validator, raw_cap }
    }

    /// Decides about a message of EYE_EVENTS.
    pub fn event(&self, subject: &str, payload: &[u8], meta: &Meta) -> Outcome {
        let Some((client, category)) = parse_events_subject(subject) else {
            let error = EventError::new(
                ErrorCode::InvalidSubject,
                format!(
                    "subject {subject:?} is not eye.events.<client>.<category-token> with a valid client id and category token"
                ),
                "",
            );
            let client = subject_client(subject);
            return Outcome::DeadLetter(self.consumer_reject(&client, &error, payload, meta));
        };
        match self
            .validator
            .validate_slice(&client, payload, meta.received)
        {
            Ok(event) if event.category != category => {
                let error = EventError::new(
                    ErrorCode::InvalidSubject,
                    format!(
                        "the event's category {:?} is not the category {category:?} of its subject {subject:?}",
                        event.category
                    ),
                    "/category",
                );
                Outcome::Reject(self.consumer_reject(&client, &error, payload, meta))
            }
            Ok(event) => match EventRow::new(&client, event, meta.received) {
                Ok(row) => Outcome::Store(row),
                Err(error) => Outcome::Reject(self.consumer_reject(&client, &error, payload, meta)),
            },
            Err(error) => Outcome::Reject(self.consumer_reject(&client, &error, payload, meta)),
        }
    }

    /// Decides about a message of EYE_REJECTS: the gateway's [`Reject`] record.
    /// The client is the subject's; an unreadable record is still recorded.
    pub fn gateway_reject(&self, subject: &str, payload: &[u8], meta: &Meta) -> Outcome {
        let subject_client = parse_rejects_subject(subject);
        match serde_json::from_slice::<Reject>(payload) {
            Ok(mut reject) => {
                if let Some(client) = subject_client {
                    reject.client = client;
                }
                Outcome::Reject(ErrorRow::from_reject(&reject))
            }
            Err(error) => {
                let error = EventError::new(
                    ErrorCode::InvalidJson,
                    format!("unreadable reject record from the gateway on {subject:?}: {error}"),
                    "",
                );
                let client = subject_client.unwrap_or_default();
                let mut row = self.consumer_reject(&client, &error, payload, meta);
                row.source = source_name(RejectSource::Gateway).to_owned();
                Outcome::Reject(row)
            }
        }
    }

    /// The `event_errors` row of a message dead-lettered because ClickHouse
    /// refused it on every delivery.
    pub fn storage_failed(
        &self,
        subject: &str,
        payload: &[u8],
        meta: &Meta,
        reason: &str,
    ) -> ErrorRow {
        let error = EventError::new(
            ErrorCode::StorageFailed,
            format!(
                "ClickHouse refused the event on all {} deliveries: {reason}",
                meta.delivered
            ),
            "",
        );
        self.consumer_reject(&subject_client(subject), &error, payload, meta)
    }

    fn consumer_reject(
        &self,
        client: &str,
        error: &EventError,
        payload: &[u8],
        meta: &Meta,
    ) -> ErrorRow {
        // Parsed only to pick out category, session and id; bounded like the validator.
        let parsed = (payload.len() <= self.validator.limits().max_event_bytes)
            .then(|| serde_json::from_slice::<Value>(payload).ok())
            .flatten();
        let mut reject = Reject::new(
            RejectSource::Consumer,
            client,
            meta.received,
            error,
            payload,
            parsed.as_ref(),
            self.raw_cap,
        );
        reject.reject_id = reject_id(meta, error.code);
        ErrorRow::from_reject(&reject)
    }
}

/// The client token of an events subject if it is a valid client id, else "".
fn subject_client(subject: &str) -> String {
    subject
        .split('.')
        .nth(2)
        .filter(|client| validate_client_id(client).is_ok())
        .unwrap_or_default()
        .to_owned()
}

/// A reject id that a redelivery of the same message reproduces: a UUID (v8)
/// from the stream, the sequence, the stored time and the code.
fn reject_id(meta: &Meta, code: ErrorCode) -> String {
    let mut hash = Sha256::new();
    hash.update(b"eye-consumer-reject/v1\0");
    hash.update(meta.stream.as_bytes());
    hash.update(b"\0");
    hash.update(meta.sequence.to_be_bytes());
    hash.update(meta.received.as_micros().to_be_bytes());
    hash.update(code.as_str().as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn decoder() -> Decoder {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let registry = eye_contract::SchemaRegistry::load_dir(dir).expect("schemas");
        Decoder::new(Validator::new(Arc::new(registry)), 4096)
    }

    fn meta(sequence: u64) -> Meta {
        Meta {
            stream: "EYE_EVENTS".into(),
            sequence,
            delivered: 1,
            received: Timestamp::from_micros(1_632_647_800_000_000),
        }
    }

    const EVENT: &[u8] = br#"{"session_id":"E2085BE5-9137-4E4E-80B5-F1FFDDC25423","category":"party","name":"AppName","data":{"host":"www.party.com","path":"/"},"timestamp":"2021-09-26 09:15:27.243860"}"#;

    #[test]
    fn a_valid_event_becomes_a_row_with_the_subject_client() {
        let Outcome::Store(row) = decoder().event("eye.events.demo.party", EVENT, &meta(1)) else {
            panic!("not stored");
        };
        assert_eq!(row.client_id, "demo");
        assert_eq!(row.timestamp_us, 1_632_647_727_243_860);
        assert_eq!(
            row.session_id.to_string(),
            "e2085be5-9137-4e4e-80b5-f1ffddc25423"
        );
        assert_eq!(row.received_us, 1_632_647_800_000_000);
    }

    #[test]
    fn invalid_events_are_rejects_with_stable_ids() {
        let d = decoder();
        let body = br#"{"session_id":"nope","category":"party","name":"A","data":{},"timestamp":"2021-09-26 09:15:27"}"#;
        let Outcome::Reject(first) = d.event("eye.events.demo.party", body, &meta(7)) else {
            panic!("not a reject");
        };
        let Outcome::Reject(again) = d.event("eye.events.demo.party", body, &meta(7)) else {
            panic!("not a reject");
        };
        assert_eq!(first.code, "invalid_session_id");
        assert_eq!(first.session_id, "nope");
        assert_eq!(first.source, "consumer");
        assert_eq!(first, again, "a redelivery gives the same row");
        let Outcome::Reject(other) = d.event("eye.events.demo.party", body, &meta(8)) else {
            panic!("not a reject");
        };
        assert_ne!(first.reject_id, other.reject_id);
    }

    #[test]
    fn a_category_other_than_the_subjects_is_rejected() {
        let Outcome::Reject(row) = decoder().event("eye.events.demo.other", EVENT, &meta(1)) else {
            panic!("not a reject");
        };
        assert_eq!(row.code, "invalid_subject");
    }

    #[test]
    fn an_unparsable_subject_is_a_dead_letter() {
        for subject in [
            "eye.events.demo.a.b",
            "eye.events.demo.bad_zz",
            "eye.events.d*.party",
        ] {
            let Outcome::DeadLetter(row) = decoder().event(subject, EVENT, &meta(1)) else {
                panic!("{subject}: not a dead letter");
            };
            assert_eq!(row.code, "invalid_subject");
        }
    }

    #[test]
    fn gateway_rejects_keep_their_id_and_take_the_subject_client() {
        let reject = Reject::new(
            RejectSource::Gateway,
            "someone-else",
            Timestamp::from_micros(5_000_000),
            &EventError::new(ErrorCode::TimestampInFuture, "ahead", "/timestamp"),
            b"{}",
            None,
            100,
        );
        let body = serde_json::to_vec(&reject).expect("json");
        let Outcome::Reject(row) = decoder().gateway_reject("eye.rejects.demo", &body, &meta(1))
        else {
            panic!("not a reject");
        };
        assert_eq!(row.reject_id, reject.reject_id);
        assert_eq!(row.client_id, "demo");
        assert_eq!(row.source, "gateway");
        assert_eq!(row.received_at, 5);

        let Outcome::Reject(row) =
            decoder().gateway_reject("eye.rejects.demo", b"garbage", &meta(2))
        else {
            panic!("not a reject");
        };
        assert_eq!(row.code, "invalid_json");
        assert_eq!(row.raw, "garbage");
    }
}
