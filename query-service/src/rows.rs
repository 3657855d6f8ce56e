//! The rows the reads return (`RowBinary`, fields in the order of the
//! SELECTs in `sql.rs`) and how each is written as one JSON object.
//!
//! Writing goes straight from the row into the response buffer: `data` is
//! stored as JSON text and is copied through as a `RawValue` (checked, not
//! rebuilt), times become RFC 3339 UTC with six fraction digits.

use eye_contract::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::cursor::Position;

/// A row type of an answer.
pub trait Output: clickhouse::RowOwned + clickhouse::RowRead + Send + 'static {
    /// The member holding the rows in a JSON answer (`events`, ...).
    const MEMBER: &'static str;
    /// Appends the row as one JSON object.
    fn write_json(&self, out: &mut Vec<u8>);
    /// The row's position, for the next page's cursor.
    fn position(&self) -> Position;
}

/// A row of `events` / `events_by_category`.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct EventRow {
    /// Event id.
    pub event_id: String,
    /// Client.
    pub client_id: String,
    /// Session, as lowercase hyphenated text.
    pub session_id: String,
    /// Category.
    pub category: String,
    /// Name.
    pub name: String,
    /// `data` as JSON text.
    pub data: String,
    /// Occurrence, microseconds.
    pub timestamp_us: i64,
}

#[derive(Serialize)]
struct EventJson<'a> {
    event_id: &'a str,
    client_id: &'a str,
    session_id: &'a str,
    category: &'a str,
    name: &'a str,
    data: DataJson<'a>,
    timestamp: String,
}

/// `data` as stored: valid JSON (the consumer wrote it) goes out as is; text
/// that is not (never written by the pipeline) goes out as a JSON string
/// rather than breaking the whole answer.
#[derive(Serialize)]
#[serde(untagged)]
enum DataJson<'a> {
    Raw(&'a RawValue),
    Text(&'a str),
}

fn data_json(data: &str) -> DataJson<'_> {
    match serde_json::from_str::<&RawValue>(data) {
        Ok(raw) => DataJson::Raw(raw),
        Err(_) => DataJson::Text(data),
    }
}

fn write<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    // Writing our own structs of strings and numbers into a Vec cannot fail.
    if let Err(error) = serde_json::to_writer(&mut *out, value) {
        tracing::error!(%error, "cannot write a row as JSON");
    }
}

impl Output for EventRow {
    const MEMBER: &'static str = "events";

    fn write_json(&self, out: &mut Vec<u8>) {
        write(
            out,
            &EventJson {
                event_id: &self.event_id,
                client_id: &self.client_id,
                session_id: &self.session_id,
                category: &self.category,
                name: &self.name,
                data: data_json(&self.data),
                timestamp: Timestamp::from_micros(self.timestamp_us).to_rfc3339(),
            },
        );
    }

    fn position(&self) -> Position {
        Position {
            time_us: self.timestamp_us,
            id: self.event_id.clone(),
            client: self.client_id.clone(),
        }
    }
}

/// A session's summary.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct SessionRow {
    /// Session id.
    pub session_id: String,
    /// First event, microseconds.
    pub first_us: i64,
    /// Last event, microseconds.
    pub last_us: i64,
    /// Events counted.
    pub event_count: u64,
    /// Categories seen, sorted.
    pub categories: Vec<String>,
}

#[derive(Serialize)]
struct SessionJson<'a> {
    session_id: &'a str,
    first: String,
    last: String,
    events: u64,
    categories: &'a [String],
}

impl Output for SessionRow {
    const MEMBER: &'static str = "sessions";

    fn write_json(&self, out: &mut Vec<u8>) {
        write(
            out,
            &SessionJson {
                session_id: &self.session_id,
                first: Timestamp::from_micros(self.first_us).to_rfc3339(),
                last: Timestamp::from_micros(self.last_us).to_rfc3339(),
                events: self.event_count,
                categories: &self.categories,
            },
        );
    }

    fn position(&self) -> Position {
        Position {
            time_us: self.first_us,
            id: self.session_id.clone(),
            client: String::new(),
        }
    }
}

/// A row of `event_errors`.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct ErrorRow {
    /// Reject id.
    pub reject_id: String,
    /// `gateway` or `consumer`.
    pub source: String,
    /// Client (empty when unknown).
    pub client_id: String,
    /// Reception, microseconds.
    pub received_us: i64,
    /// Error code.
    pub code: String,
    /// Human message.
    pub message: String,
    /// JSON pointer.
    pub pointer: String,
    /// Category as sent, or empty.
    pub category: String,
    /// Session id as sent, or empty.
    pub session_id: String,
    /// Event id, or empty.
    pub event_id: String,
    /// The raw event, capped.
    pub raw: String,
    /// 1 when `raw` was cut.
    pub raw_truncated: u8,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    reject_id: &'a str,
    source: &'a str,
    client_id: &'a str,
    received: String,
    code: &'a str,
    message: &'a str,
    pointer: &'a str,
    category: &'a str,
    session_id: &'a str,
    event_id: &'a str,
    raw: &'a str,
    raw_truncated: bool,
}

impl Output for ErrorRow {
    const MEMBER: &'static str = "errors";

    fn write_json(&self, out: &mut Vec<u8>) {
        write(
            out,
            &ErrorJson {
                reject_id: &self.reject_id,
                source: &self.source,
                client_id: &self.client_id,
                received: Timestamp::from_micros(self.received_us).to_rfc3339(),
                code: &self.code,
                message: &self.message,
                pointer: &self.pointer,
                category: &self.category,
                session_id: &self.session_id,
                event_id: &self.event_id,
                raw: &self.raw,
                raw_truncated: self.raw_truncated != 0,
            },
        );
    }

    fn position(&self) -> Position {
        Position {
            time_us: self.received_us,
            id: self.reject_id.clone(),
            client: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_with_data_as_an_object_and_rfc3339_time() {
        let row = EventRow {
            event_id: "e1".into(),
            client_id: "demo".into(),
            session_id: "e2085be5-9137-4e4e-80b5-f1ffddc25423".into(),
            category: "party".into(),
            name: "AppName".into(),
            data: r#"{"host":"www.party.com","path":"/"}"#.into(),
            timestamp_us: 1_632_647_727_243_860,
        };
        let mut out = Vec::new();
        row.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(v["data"]["host"], "www.party.com");
        assert_eq!(v["timestamp"], "2021-09-26T09:15:27.243860Z");
        let broken = EventRow {
            data: "{not json".into(),
            ..row
        };
        let mut out = Vec::new();
        broken.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
        assert_eq!(v["data"], "{not json");
    }
}
