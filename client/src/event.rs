//! [`Event`]: an event to send, in the wire format v1 of DESIGN.md.

use eye_contract::{Timestamp, derive_event_id};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// An event to send: a session, a category, a name, a JSON object of data
/// and the time it occurred, and optionally the client's own idempotency key.
///
/// It serializes to the gateway's wire format (the timestamp as RFC 3339 UTC
/// with microseconds). Without [`Event::event_id`], the gateway derives the id
/// from the content and the sending client, so resending the same event —
/// which the client does on retryable failures — never stores a second copy.
///
/// ```
/// use eye_client::{Event, Timestamp};
/// use serde_json::json;
///
/// let session = uuid::Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423").unwrap();
/// let event = Event::new(session, "party", "AppName", Timestamp::now())
///     .with_data(json!({"host": "www.party.com", "path": "/"}))
///     .unwrap();
/// assert_eq!(event.data["host"], "www.party.com");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The session the event belongs to.
    pub session_id: Uuid,
    /// The category; it selects the JSON Schema the event must satisfy.
    pub category: String,
    /// The application or event name.
    pub name: String,
    /// The category-specific payload.
    pub data: Map<String, Value>,
    /// When the event occurred.
    pub timestamp: Timestamp,
    /// The client's idempotency key (1–64 characters of `[A-Za-z0-9._:-]`);
    /// `None` lets the id be derived from the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl Event {
    /// An event with empty `data` and no explicit id.
    ///
    /// ```
    /// # use eye_client::{Event, Timestamp};
    /// let event = Event::new(uuid::Uuid::nil(), "party", "Click", Timestamp::from_micros(0));
    /// assert!(event.data.is_empty() && event.event_id.is_none());
    /// ```
    pub fn new(
        session_id: Uuid,
        category: impl Into<String>,
        name: impl Into<String>,
        timestamp: Timestamp,
    ) -> Event {
        Event {
            session_id,
            category: category.into(),
            name: name.into(),
            data: Map::new(),
            timestamp,
            event_id: None,
        }
    }

    /// This event with `data` set from a JSON value, which must be an object;
    /// any other value is handed back as the error.
    ///
    /// ```
    /// # use eye_client::{Event, Timestamp};
    /// let event = Event::new(uuid::Uuid::nil(), "party", "Click", Timestamp::now());
    /// assert!(event.clone().with_data(serde_json::json!({"path": "/"})).is_ok());
    /// assert!(event.with_data(serde_json::json!([1, 2])).is_err());
    /// ```
    pub fn with_data(mut self, data: Value) -> Result<Event, Value> {
        match data {
            Value::Object(map) => {
                self.data = map;
                Ok(self)
            }
            other => Err(other),
        }
    }

    /// This event with an explicit idempotency key.
    ///
    /// ```
    /// # use eye_client::{Event, Timestamp};
    /// let event = Event::new(uuid::Uuid::nil(), "party", "Click", Timestamp::now())
    ///     .with_event_id("order-42:click");
    /// assert_eq!(event.event_id.as_deref(), Some("order-42:click"));
    /// ```
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Event {
        self.event_id = Some(event_id.into());
        self
    }

    /// The id this event is stored under when `client` sends it: its own
    /// [`Event::event_id`], or the id derived from its content
    /// ([`eye_contract::derive_event_id`], the rule the gateway and the
    /// consumer apply).
    ///
    /// ```
    /// # use eye_client::{Event, Timestamp};
    /// let event = Event::new(uuid::Uuid::nil(), "party", "Click", Timestamp::from_micros(0));
    /// assert_eq!(event.id_for("demo"), event.clone().id_for("demo"));
    /// assert_ne!(event.id_for("demo"), event.id_for("other"));
    /// assert_eq!(event.with_event_id("k").id_for("demo"), "k");
    /// ```
    pub fn id_for(&self, client: &str) -> String {
        match &self.event_id {
            Some(id) => id.clone(),
            None => derive_event_id(
                client,
                &self.session_id,
                &self.category,
                &self.name,
                &self.data,
                self.timestamp,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_to_the_wire_format() {
        let session = Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423").expect("uuid");
        let ts = Timestamp::parse("2021-09-26 09:15:27.243860").expect("ts");
        let event = Event::new(session, "party", "AppName", ts)
            .with_data(json!({"host": "www.party.com", "path": "/"}))
            .expect("object");
        assert_eq!(
            serde_json::to_value(&event).expect("json"),
            json!({"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "party",
                   "name": "AppName", "data": {"host": "www.party.com", "path": "/"},
                   "timestamp": "2021-09-26T09:15:27.243860Z"})
        );
        let with_id = event.with_event_id("abc");
        assert_eq!(
            serde_json::to_value(&with_id).expect("json")["event_id"],
            "abc"
        );
    }

    #[test]
    fn derived_id_matches_the_contract() {
        // The same fixed vector as the contract's test: the client must agree with the gateway.
        let session = Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423").expect("uuid");
        let ts = Timestamp::parse("2021-09-26 09:15:27.24386").expect("ts");
        let event = Event::new(session, "party", "AppName", ts)
            .with_data(json!({"host": "www.party.com", "path": "/", "n": [1, {"b": 2, "a": null}]}))
            .expect("object");
        assert_eq!(event.id_for("demo"), "b720eb67-867a-8348-b087-59824a162261");
    }
}
