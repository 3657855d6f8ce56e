//! [`Event`]: an accepted event, validated and normalized, and the names of
//! its wire fields.
//!
//! An `Event` is what every part after validation works with: the session id
//! is a parsed UUID (printed lowercase), the timestamp a UTC microsecond
//! instant, and `event_id` always present (client-given or derived). It
//! serializes to the wire format — `event_id` included, timestamp as RFC 3339
//! with microseconds and `Z` — so validating the serialized event again (for
//! the same client) gives an equal `Event`: what the gateway publishes, the
//! consumer can re-validate without drift.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::timestamp::Timestamp;

/// Wire field: the optional idempotency key.
pub const FIELD_EVENT_ID: &str = "event_id";
/// Wire field: the session's UUID.
pub const FIELD_SESSION_ID: &str = "session_id";
/// Wire field: the category, which selects the schema.
pub const FIELD_CATEGORY: &str = "category";
/// Wire field: the application or event name.
pub const FIELD_NAME: &str = "name";
/// Wire field: the category-specific payload object.
pub const FIELD_DATA: &str = "data";
/// Wire field: when the event occurred.
pub const FIELD_TIMESTAMP: &str = "timestamp";

/// Every top-level field the wire format defines; anything else is `unknown_field`.
pub const FIELDS: [&str; 6] = [
    FIELD_EVENT_ID,
    FIELD_SESSION_ID,
    FIELD_CATEGORY,
    FIELD_NAME,
    FIELD_DATA,
    FIELD_TIMESTAMP,
];

/// The fields an event must have, in the order they are checked.
pub const REQUIRED_FIELDS: [&str; 5] = [
    FIELD_SESSION_ID,
    FIELD_CATEGORY,
    FIELD_NAME,
    FIELD_DATA,
    FIELD_TIMESTAMP,
];

/// A validated, normalized event.
///
/// Built by [`crate::Validator`]; the fields are public so later stages can
/// move them out without copying. Anyone constructing one by hand is
/// responsible for its invariants (run it through the validator otherwise).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The client-given idempotency key, or the id derived from content
    /// ([`crate::derive_event_id`]).
    pub event_id: String,
    /// The session; serialized hyphenated in lower case.
    pub session_id: Uuid,
    /// A category known to the schema registry.
    pub category: String,
    /// The application or event name: non-empty, at most 256 characters.
    pub name: String,
    /// The category-specific payload.
    pub data: Map<String, Value>,
    /// When the event occurred, in UTC.
    pub timestamp: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_to_the_wire_format() {
        let event = Event {
            event_id: "abc".to_owned(),
            session_id: Uuid::parse_str("E2085BE5-9137-4E4E-80B5-F1FFDDC25423").expect("uuid"),
            category: "party".to_owned(),
            name: "AppName".to_owned(),
            data: Map::from_iter([("host".to_owned(), json!("www.party.com"))]),
            timestamp: Timestamp::from_micros(1_632_647_727_243_860),
        };
        assert_eq!(
            serde_json::to_value(&event).expect("serialize"),
            json!({
                "event_id": "abc",
                "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
                "category": "party",
                "name": "AppName",
                "data": {"host": "www.party.com"},
                "timestamp": "2021-09-26T09:15:27.243860Z"
            })
        );
    }

    #[test]
    fn field_lists_agree() {
        assert!(REQUIRED_FIELDS.iter().all(|f| FIELDS.contains(f)));
        assert!(!REQUIRED_FIELDS.contains(&FIELD_EVENT_ID));
    }
}
