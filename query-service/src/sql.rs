//! The SQL the query service sends, built from fixed fragments.
//!
//! Rules:
//! - **Only fragments from this file become SQL text.** Every value is a `?`
//!   bound by the `clickhouse` crate (which quotes and escapes it), so no
//!   request can change a statement's shape. ClickHouse 18.16 has no server
//!   side query parameters, so client-side binding is what both versions share.
//! - **Each event once, without `FINAL`.** A redelivered event is stored as
//!   identical rows until ClickHouse merges the parts (`migrations/0001_events.sql`).
//!   Reads keep one row per sort key of the table read (the rule of
//!   ReplacingMergeTree and of `FINAL`) with `LIMIT 1 BY <sort key>` after
//!   every filter, the cursor and the `ORDER BY`, before the page's `LIMIT`;
//!   counts are `uniqExact` of that sort key (a copy adds no distinct key;
//!   min, max and sets do not change with one; in parallel, unlike a
//!   `LIMIT 1 BY` subquery, which is one thread on 18.16). Same answers as
//!   `FINAL`, before or after a merge, and 2–4× faster on 18.16, whose
//!   `FINAL` merges the matching ranges in one thread (only a listing of
//!   every session of a month is slower; docs/performance.md, "Read-side
//!   dedup without FINAL").
//! - **The right sort order.** A session is read from `events` (sorted by
//!   session), anything else from `events_by_category` (sorted by category
//!   and time); rejects from `event_errors`.
//! - **Partition pruning.** A time bound on `timestamp_us` is repeated on the
//!   second-precision partition column (`timestamp`, `received_at`), so only
//!   the months in range are read.
//! - **Keyset order.** Every read has a total order ending in unique columns,
//!   and a page starts strictly after the cursor's position.

use eye_contract::Timestamp;

use crate::cursor::Position;
use crate::params::{ErrorFilters, EventFilters, Range, SessionFilters};

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (quoted and escaped by the crate).
    Str(String),
    /// A signed number.
    Int(i64),
    /// An unsigned number.
    UInt(u64),
}

/// A statement and its values, in the order of its `?`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statement {
    /// The SQL text, made only of this module's fragments.
    pub sql: String,
    /// The values of its `?`, in order.
    pub binds: Vec<Value>,
}

impl Statement {
    fn new(head: &str) -> Statement {
        Statement {
            sql: head.to_owned(),
            binds: Vec::new(),
        }
    }

    /// Appends `fragment` (a constant of this module) and the values of its `?`.
    fn push(&mut self, fragment: &'static str, values: impl IntoIterator<Item = Value>) {
        self.sql.push_str(fragment);
        self.binds.extend(values);
    }

    /// The crate's query for this statement, with its values bound.
    pub fn query(&self, client: &clickhouse::Client) -> clickhouse::query::Query {
        let mut query = client.query(&self.sql);
        for value in &self.binds {
            query = match value {
                Value::Str(s) => query.bind(s.as_str()),
                Value::Int(n) => query.bind(*n),
                Value::UInt(n) => query.bind(*n),
            };
        }
        query
    }
}

/// Whole seconds of `ts` as a `DateTime` value (clamped to its range), for
/// the partition-pruning bounds.
fn seconds(ts: Timestamp) -> Value {
    let s = ts
        .as_micros()
        .div_euclid(1_000_000)
        .clamp(0, i64::from(u32::MAX));
    Value::Int(s)
}

/// `[from, to)` on a microsecond column and its second-precision partition column.
fn range(st: &mut Statement, range: Range, us: &'static [&'static str; 2]) {
    let [from_fragment, to_fragment] = us;
    if let Some(from) = range.from {
        st.push(from_fragment, [Value::Int(from.as_micros()), seconds(from)]);
    }
    if let Some(to) = range.to {
        // The last second that can hold an instant before `to`.
        let last = Timestamp::from_micros(to.as_micros().saturating_sub(1));
        st.push(to_fragment, [Value::Int(to.as_micros()), seconds(last)]);
    }
}

const EVENT_RANGE: &[&str; 2] = &[
    "\n  AND timestamp_us >= ? AND timestamp >= toDateTime(?, 'UTC')",
    "\n  AND timestamp_us < ? AND timestamp <= toDateTime(?, 'UTC')",
];
const ERROR_RANGE: &[&str; 2] = &[
    "\n  AND received_us >= ? AND received_at >= toDateTime(?, 'UTC')",
    "\n  AND received_us < ? AND received_at <= toDateTime(?, 'UTC')",
];

/// One row per sort key of `events` (`migrations/0001_events.sql`).
const EVENTS_ONCE: &str = "\nLIMIT 1 BY session_id, timestamp_us, client_id, event_id";
/// One row per sort key of `events_by_category` (`migrations/0003_events_by_category.sql`).
const BY_CATEGORY_ONCE: &str =
    "\nLIMIT 1 BY category, timestamp_us, client_id, event_id, session_id";
/// One row per sort key of `event_errors` (`migrations/0002_event_errors.sql`).
const ERRORS_ONCE: &str = "\nLIMIT 1 BY client_id, received_at, reject_id";

/// Events matching `filters`, visible to `scope` (a client id, or every
/// client), after `after`, in order of occurrence then event id (then
/// client, since ids are unique per client), `limit` rows.
pub fn events(
    filters: &EventFilters,
    scope: Option<&str>,
    after: Option<&Position>,
    limit: u64,
) -> Statement {
    let mut st = Statement::new(
        "SELECT event_id, client_id, toString(session_id) AS sid, category, name, data, timestamp_us",
    );
    match filters.session_id {
        Some(session) => st.push(
            "\nFROM events\nWHERE session_id = toUUID(?)",
            [Value::Str(session.hyphenated().to_string())],
        ),
        None => st.push("\nFROM events_by_category\nWHERE 1", []),
    }
    if let Some(category) = &filters.category {
        st.push("\n  AND category = ?", [Value::Str(category.clone())]);
    }
    if let Some(name) = &filters.name {
        st.push("\n  AND name = ?", [Value::Str(name.clone())]);
    }
    if let Some(client) = scope {
        st.push("\n  AND client_id = ?", [Value::Str(client.to_owned())]);
    }
    range(&mut st, filters.range, EVENT_RANGE);
    if let Some(p) = after {
        // Expanded instead of a tuple comparison: the same on every version,
        // and the first term keeps the primary key usable.
        st.push(
            "\n  AND timestamp_us >= ? AND (timestamp_us > ? OR event_id > ? OR (event_id = ? AND client_id > ?))",
            [
                Value::Int(p.time_us),
                Value::Int(p.time_us),
                Value::Str(p.id.clone()),
                Value::Str(p.id.clone()),
                Value::Str(p.client.clone()),
            ],
        );
    }
    st.push("\nORDER BY timestamp_us, event_id, client_id", []);
    st.push(
        match filters.session_id {
            Some(_) => EVENTS_ONCE,
            None => BY_CATEGORY_ONCE,
        },
        [],
    );
    st.push("\nLIMIT ?", [Value::UInt(limit)]);
    st
}

/// Longest range, in microseconds, whose sessions are listed from
/// `events_by_category` (sorted by time within a category) rather than from
/// `events` (sorted by session). On 10 M events (18.16) the time-sorted table
/// reads only the range: one hour 0.5 s → 0.03–0.1 s, one day 0.6 → 0.2–0.3 s;
/// from a week on both read most of the table and `events` groups faster
/// (a week 1.4 s both, 30 days 5.5–5.9 s against 6.8–7.9 s).
const SESSIONS_BY_TIME_MAX_US: i64 = 3 * 86_400 * 1_000_000;

/// Sessions with events in the range (and, with a category, with at least
/// one event of it there): first and last time, event count and the
/// categories of their events in the range, ordered by first time then id.
/// Both tables hold the same rows, so the answer does not depend on which
/// one is read.
pub fn sessions(
    filters: &SessionFilters,
    scope: Option<&str>,
    after: Option<&Position>,
    limit: u64,
) -> Statement {
    let short_range = match (filters.range.from, filters.range.to) {
        (Some(from), Some(to)) => {
            to.as_micros().saturating_sub(from.as_micros()) <= SESSIONS_BY_TIME_MAX_US
        }
        _ => false,
    };
    let mut st = Statement::new(
        "SELECT toString(session_id) AS sid, min(timestamp_us) AS first_us, max(timestamp_us) AS last_us, \
         uniqExact(timestamp_us, client_id, event_id) AS event_count, \
         arraySort(groupUniqArray(category)) AS categories",
    );
    st.push(
        if short_range {
            "\nFROM events_by_category\nWHERE 1"
        } else {
            "\nFROM events\nWHERE 1"
        },
        [],
    );
    if let Some(client) = scope {
        st.push("\n  AND client_id = ?", [Value::Str(client.to_owned())]);
    }
    range(&mut st, filters.range, EVENT_RANGE);
    if let Some(category) = &filters.category {
        // The category's sessions come from the table sorted by category;
        // their statistics from the table chosen above, over all categories.
        st.push(
            "\n  AND session_id IN (SELECT session_id FROM events_by_category WHERE category = ?",
            [Value::Str(category.clone())],
        );
        if let Some(client) = scope {
            st.push("\n    AND client_id = ?", [Value::Str(client.to_owned())]);
        }
        range(&mut st, filters.range, EVENT_RANGE);
        st.push(")", []);
    }
    // The count is of distinct sort keys (session_id is the group's), so a
    // copy is not counted; first, last and categories do not change with one.
    st.push("\nGROUP BY session_id", []);
    let (having, order) = if filters.newest_first {
        (
            "\nHAVING first_us < ? OR (first_us = ? AND sid < ?)",
            "\nORDER BY first_us DESC, sid DESC\nLIMIT ?",
        )
    } else {
        (
            "\nHAVING first_us > ? OR (first_us = ? AND sid > ?)",
            "\nORDER BY first_us, sid\nLIMIT ?",
        )
    };
    if let Some(p) = after {
        st.push(
            having,
            [
                Value::Int(p.time_us),
                Value::Int(p.time_us),
                Value::Str(p.id.clone()),
            ],
        );
    }
    st.push(order, [Value::UInt(limit)]);
    st
}

/// Events per hour of occurrence matching `filters` (category, name and a
/// range; no session), visible to `scope`: rows `(hour, events)` for the
/// hours with events, in order. The hour is the UNIX time of its start.
pub fn events_per_hour(filters: &EventFilters, scope: Option<&str>) -> Statement {
    let mut st = Statement::new(
        "SELECT toUInt32(toStartOfHour(timestamp)) AS hour, \
         uniqExact(category, timestamp_us, client_id, event_id, session_id) AS events\
         \nFROM events_by_category\nWHERE 1",
    );
    if let Some(category) = &filters.category {
        st.push("\n  AND category = ?", [Value::Str(category.clone())]);
    }
    if let Some(name) = &filters.name {
        st.push("\n  AND name = ?", [Value::Str(name.clone())]);
    }
    if let Some(client) = scope {
        st.push("\n  AND client_id = ?", [Value::Str(client.to_owned())]);
    }
    range(&mut st, filters.range, EVENT_RANGE);
    st.push("\nGROUP BY hour\nORDER BY hour", []);
    st
}

/// Rejects per hour of reception and code matching `filters`: rows
/// `(hour, code, errors)`, in order of hour then code.
pub fn errors_per_hour(filters: &ErrorFilters) -> Statement {
    let mut st = Statement::new(
        "SELECT toUInt32(toStartOfHour(received_at)) AS hour, code, \
         uniqExact(client_id, received_at, reject_id) AS errors\
         \nFROM event_errors\nWHERE 1",
    );
    error_filters(&mut st, filters);
    st.push("\nGROUP BY hour, code\nORDER BY hour, code", []);
    st
}

/// The client, code and range conditions of a read of `event_errors`.
fn error_filters(st: &mut Statement, filters: &ErrorFilters) {
    if let Some(client) = &filters.client {
        st.push("\n  AND client_id = ?", [Value::Str(client.clone())]);
    }
    if let Some(code) = filters.code {
        st.push("\n  AND code = ?", [Value::Str(code.as_str().to_owned())]);
    }
    range(st, filters.range, ERROR_RANGE);
}

/// Rejects matching `filters` (already narrowed to the token's client when
/// its scope is one client), in order of reception then reject id.
pub fn errors(filters: &ErrorFilters, after: Option<&Position>, limit: u64) -> Statement {
    let mut st = Statement::new(
        "SELECT reject_id, source, client_id, received_us, code, message, pointer, category, session_id, event_id, raw, raw_truncated\
         \nFROM event_errors\nWHERE 1",
    );
    error_filters(&mut st, filters);
    if let Some(p) = after {
        st.push(
            "\n  AND received_us >= ? AND (received_us > ? OR reject_id > ?)",
            [
                Value::Int(p.time_us),
                Value::Int(p.time_us),
                Value::Str(p.id.clone()),
            ],
        );
    }
    st.push("\nORDER BY received_us, reject_id", []);
    st.push(ERRORS_ONCE, []);
    st.push("\nLIMIT ?", [Value::UInt(limit)]);
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::EventFilters;

    #[test]
    fn sessions_of_short_ranges_are_read_from_the_time_sorted_table() {
        let at = |hours: i64| {
            Some(Timestamp::from_micros(
                1_632_600_000_000_000 + hours * 3_600_000_000,
            ))
        };
        let listing = |from, to| {
            sessions(
                &SessionFilters {
                    category: None,
                    range: Range { from, to },
                    newest_first: false,
                },
                None,
                None,
                10,
            )
            .sql
        };
        assert!(listing(at(0), at(1)).contains("FROM events_by_category\n"));
        assert!(listing(at(0), at(72)).contains("FROM events_by_category\n"));
        assert!(listing(at(0), at(73)).contains("FROM events\n"));
        assert!(listing(at(0), None).contains("FROM events\n"));
        assert!(listing(None, at(1)).contains("FROM events\n"));
    }

    /// Every shape of statement, with example values: the text of
    /// `query-service/sql/reads.sql`, which `deploy/chdb_check.py` runs on
    /// current ClickHouse (the integration tests run them on 18.16).
    fn examples_file() -> String {
        let session = uuid::Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423").ok();
        let range = Range {
            from: Some(Timestamp::from_micros(1_632_600_000_000_000)),
            to: Some(Timestamp::from_micros(1_632_700_000_000_000)),
        };
        let after = Position {
            time_us: 1_632_600_000_000_000,
            id: "e0".to_owned(),
            client: "demo".to_owned(),
        };
        let all = EventFilters {
            session_id: session,
            category: Some("party".to_owned()),
            name: Some("AppName".to_owned()),
            range,
        };
        let by_category = EventFilters {
            session_id: None,
            ..all.clone()
        };
        let sessions_filtered = SessionFilters {
            category: Some("party".to_owned()),
            range,
            newest_first: false,
        };
        let newest = SessionFilters {
            newest_first: true,
            ..sessions_filtered.clone()
        };
        let long = SessionFilters {
            category: None,
            range: Range {
                from: range.from,
                to: Some(Timestamp::from_micros(
                    1_632_600_000_000_000 + 7 * 86_400_000_000,
                )),
            },
            newest_first: false,
        };
        let errors_filtered = ErrorFilters {
            code: Some(eye_contract::ErrorCode::InvalidSessionId),
            client: Some("demo".to_owned()),
            range,
        };
        let examples = [
            (
                "a session",
                events(
                    &EventFilters {
                        session_id: session,
                        ..EventFilters::default()
                    },
                    None,
                    None,
                    101,
                ),
            ),
            (
                "a session, every filter, a client's token, a cursor",
                events(&all, Some("demo"), Some(&after), 11),
            ),
            (
                "events, no filter",
                events(&EventFilters::default(), None, None, 101),
            ),
            (
                "events by category, name and time, a client's token, a cursor",
                events(&by_category, Some("demo"), Some(&after), 11),
            ),
            (
                "sessions, no filter",
                sessions(&SessionFilters::default(), None, None, 101),
            ),
            (
                "sessions of a category in a range, a client's token, a cursor",
                sessions(&sessions_filtered, Some("demo"), Some(&after), 11),
            ),
            (
                "sessions of a category in a range, newest first, a cursor",
                sessions(&newest, None, Some(&after), 11),
            ),
            (
                "sessions of a range over three days (read from events)",
                sessions(&long, None, None, 101),
            ),
            (
                "rejects, no filter",
                errors(&ErrorFilters::default(), None, 101),
            ),
            (
                "rejects by code, client and time, a cursor",
                errors(&errors_filtered, Some(&after), 11),
            ),
            (
                "events per hour in a range",
                events_per_hour(
                    &EventFilters {
                        range,
                        ..EventFilters::default()
                    },
                    None,
                ),
            ),
            (
                "events per hour of a category and name, a client's token",
                events_per_hour(&by_category, Some("demo")),
            ),
            (
                "rejects per hour and code in a range",
                errors_per_hour(&ErrorFilters {
                    range,
                    ..ErrorFilters::default()
                }),
            ),
            (
                "rejects per hour of a code and client",
                errors_per_hour(&errors_filtered),
            ),
        ];
        let client = clickhouse::Client::default();
        let mut text = String::from(
            "-- GENERATED by `EYE_UPDATE_SQL=1 cargo test -p query-service --lib sql`; do not edit.\n\
             -- Every shape of statement the query service sends (query-service/src/sql.rs),\n\
             -- with example values bound as the clickhouse crate binds them. The\n\
             -- integration tests run these shapes on ClickHouse 18.16; deploy/chdb_check.py\n\
             -- runs this file on current ClickHouse.\n",
        );
        for (label, statement) in examples {
            text.push_str(&format!(
                "\n-- {label}\n{};\n",
                statement.query(&client).sql_display()
            ));
        }
        text
    }

    #[test]
    fn the_examples_file_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/reads.sql");
        let text = examples_file();
        if std::env::var_os("EYE_UPDATE_SQL").is_some() {
            std::fs::write(path, &text).expect("write sql/reads.sql");
        }
        let stored = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            stored == text,
            "query-service/sql/reads.sql is stale: run EYE_UPDATE_SQL=1 cargo test -p query-service --lib sql"
        );
    }

    #[test]
    fn values_never_enter_the_text() {
        let evil = "x' OR 1=1 --?";
        let filters = EventFilters {
            category: Some(evil.to_owned()),
            name: Some(evil.to_owned()),
            range: Range {
                from: Some(Timestamp::from_micros(1_500_000)),
                to: Some(Timestamp::from_micros(3_000_000)),
            },
            ..EventFilters::default()
        };
        let position = Position {
            time_us: 2,
            id: evil.to_owned(),
            client: evil.to_owned(),
        };
        let st = events(&filters, Some("demo"), Some(&position), 11);
        assert!(!st.sql.contains(evil));
        assert_eq!(st.sql.matches('?').count(), st.binds.len());
        // [1.5 s, 3 s): seconds 1 to 2.
        assert!(st.binds.contains(&Value::Int(1)) && st.binds.contains(&Value::Int(2)));
        assert!(st.sql.contains("FROM events_by_category\n"));
        assert!(!st.sql.contains("FINAL"));
        assert!(st.sql.ends_with(&format!("{BY_CATEGORY_ONCE}\nLIMIT ?")));
        let st = sessions(
            &SessionFilters {
                category: Some(evil.to_owned()),
                range: filters.range,
                newest_first: true,
            },
            Some("demo"),
            Some(&position),
            5,
        );
        assert!(!st.sql.contains(evil));
        assert_eq!(st.sql.matches('?').count(), st.binds.len());
        let st = events_per_hour(&filters, Some("demo"));
        assert!(!st.sql.contains(evil));
        assert_eq!(st.sql.matches('?').count(), st.binds.len());
        let st = errors(&ErrorFilters::default(), Some(&position), 5);
        assert_eq!(st.sql.matches('?').count(), st.binds.len());
    }
}
