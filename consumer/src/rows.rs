//! The rows of `events` and `event_errors` as the consumer writes them
//! (`RowBinary`, field order = column order of `consumer/sql/insert_*.sql`),
//! and how a validated [`Event`] or a [`Reject`] becomes one.
//!
//! Every value comes from the message, never from the consumer's clock, so a
//! redelivered message gives the identical row (see `migrations/0001_events.sql`).

use eye_contract::{ErrorCode, Event, EventError, Reject, RejectSource, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// A row of `events`.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct EventRow {
    /// The event id (client-given or derived).
    pub event_id: String,
    /// The client, from the subject the event was published on.
    pub client_id: String,
    /// The session.
    #[serde(with = "clickhouse::serde::uuid")]
    pub session_id: Uuid,
    /// The category.
    pub category: String,
    /// The name.
    pub name: String,
    /// `data` as compact JSON text.
    pub data: String,
    /// `DateTime('UTC')`: the occurrence time in whole seconds.
    pub timestamp: u32,
    /// The occurrence time in microseconds since the epoch, exact.
    pub timestamp_us: i64,
    /// `DateTime('UTC')`: when JetStream stored the event, in whole seconds.
    pub received_at: u32,
    /// When JetStream stored the event, in microseconds.
    pub received_us: i64,
}

/// A row of `event_errors`.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct ErrorRow {
    /// The reject's id, fixed when the reject was made.
    pub reject_id: String,
    /// `gateway` or `consumer`.
    pub source: String,
    /// The client, or empty when unknown.
    pub client_id: String,
    /// `DateTime('UTC')`: when the pipeline received the event, in seconds.
    pub received_at: u32,
    /// The same in microseconds.
    pub received_us: i64,
    /// The error code (`ErrorCode::as_str`).
    pub code: String,
    /// The human explanation.
    pub message: String,
    /// JSON pointer to the culprit.
    pub pointer: String,
    /// The event's category, or empty.
    pub category: String,
    /// The event's session id as sent, or empty.
    pub session_id: String,
    /// The event's id as sent, or empty.
    pub event_id: String,
    /// The raw event, capped.
    pub raw: String,
    /// 1 when `raw` was cut.
    pub raw_truncated: u8,
}

/// `DateTime` seconds of `ts`, or `None` outside 1970-01-01..2106-02-07.
fn datetime_seconds(ts: Timestamp) -> Option<u32> {
    u32::try_from(ts.as_micros().div_euclid(MICROS_PER_SECOND)).ok()
}

impl EventRow {
    /// The row of `event`, sent by `client` and stored by JetStream at `received`.
    ///
    /// Fails (as `timestamp_in_future`) only for an occurrence time after
    /// 2106-02-07, the end of ClickHouse `DateTime`, which the default time
    /// rules never let through.
    pub fn new(client: &str, event: Event, received: Timestamp) -> Result<EventRow, EventError> {
        let timestamp = datetime_seconds(event.timestamp).ok_or_else(|| {
            EventError::new(
                ErrorCode::TimestampInFuture,
                format!(
                    "timestamp {} is after 2106-02-07T06:28:15Z, the last time that can be stored",
                    event.timestamp
                ),
                "/timestamp",
            )
        })?;
        let data = serde_json::to_string(&event.data).map_err(|error| {
            EventError::new(
                ErrorCode::InvalidJson,
                format!("data cannot be written as JSON: {error}"),
                "/data",
            )
        })?;
        Ok(EventRow {
            event_id: event.event_id,
            client_id: client.to_owned(),
            session_id: event.session_id,
            category: event.category,
            name: event.name,
            data,
            timestamp,
            timestamp_us: event.timestamp.as_micros(),
            received_at: datetime_seconds(received).unwrap_or(0),
            received_us: received.as_micros(),
        })
    }
}

impl ErrorRow {
    /// The row of `reject`.
    pub fn from_reject(reject: &Reject) -> ErrorRow {
        ErrorRow {
            reject_id: reject.reject_id.clone(),
            source: source_name(reject.source).to_owned(),
            client_id: reject.client.clone(),
            received_at: datetime_seconds(reject.received_at).unwrap_or(0),
            received_us: reject.received_at.as_micros(),
            code: reject.code.as_str().to_owned(),
            message: reject.message.clone(),
            pointer: reject.pointer.clone(),
            category: reject.category.clone().unwrap_or_default(),
            session_id: reject.session_id.clone().unwrap_or_default(),
            event_id: reject.event_id.clone().unwrap_or_default(),
            raw: reject.raw.clone(),
            raw_truncated: u8::from(reject.raw_truncated),
        }
    }
}

/// The `source` column's spelling of a [`RejectSource`].
pub fn source_name(source: RejectSource) -> &'static str {
    match source {
        RejectSource::Gateway => "gateway",
        RejectSource::Consumer => "consumer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql;
    use clickhouse::Row;

    #[test]
    fn column_lists_match_the_sql_files() {
        for (text, columns) in [
            (sql::INSERT_EVENTS, EventRow::COLUMN_NAMES),
            (sql::INSERT_EVENT_ERRORS, ErrorRow::COLUMN_NAMES),
        ] {
            let (_, listed) = sql::insert_columns(text).expect("an INSERT column list");
            assert_eq!(listed, columns, "{text}");
        }
    }

    #[test]
    fn source_names_match_the_serde_spelling() {
        for source in [RejectSource::Gateway, RejectSource::Consumer] {
            assert_eq!(
                serde_json::to_value(source).expect("serialize"),
                serde_json::Value::from(source_name(source))
            );
        }
    }

    #[test]
    fn times_are_split_into_seconds_and_exact_microseconds() {
        let event = Event {
            event_id: "e".into(),
            session_id: Uuid::nil(),
            category: "party".into(),
            name: "n".into(),
            data: serde_json::Map::new(),
            timestamp: Timestamp::from_micros(1_632_647_727_243_860),
        };
        let row = EventRow::new("demo", event.clone(), Timestamp::from_micros(1_999_999))
            .expect("storable");
        assert_eq!(row.timestamp, 1_632_647_727);
        assert_eq!(row.timestamp_us, 1_632_647_727_243_860);
        assert_eq!(row.received_at, 1);
        assert_eq!(row.data, "{}");

        let late = Event {
            timestamp: Timestamp::from_micros(5_000_000_000 * MICROS_PER_SECOND),
            ..event
        };
        let error = EventRow::new("demo", late, Timestamp::from_micros(0)).unwrap_err();
        assert_eq!(error.code, ErrorCode::TimestampInFuture);
    }
}
