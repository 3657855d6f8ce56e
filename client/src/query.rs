//! Typed reads from the query service: filters, rows and pagination.
//!
//! Every list read is keyset-paginated by the service (`next_cursor`); the
//! [`crate::Client`] methods that return a [`futures::Stream`] follow the
//! cursors themselves, one page at a time, so a long read never holds more
//! than a page in memory. The `*_page` methods give single pages for callers
//! that keep the cursor themselves.

use eye_contract::Timestamp;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::error::QueryError;

/// A stored event as the query service returns it.
///
/// ```no_run
/// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
/// for event in client.session_events(uuid::Uuid::nil()).await? {
///     println!("{} {} {} {}", event.timestamp.to_rfc3339(), event.category, event.name, event.data);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredEvent {
    /// The id it is stored under.
    pub event_id: String,
    /// The client that sent it.
    pub client_id: String,
    /// Its session.
    pub session_id: Uuid,
    /// Its category.
    pub category: String,
    /// Its name.
    pub name: String,
    /// Its payload (a JSON object for every event the pipeline stored).
    pub data: Value,
    /// When it occurred (UTC, microseconds).
    pub timestamp: Timestamp,
}

/// A session with events in the range asked for.
///
/// ```no_run
/// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
/// use futures::TryStreamExt;
/// let sessions: Vec<eye_client::SessionSummary> =
///     client.sessions(eye_client::SessionFilter::default()).try_collect().await?;
/// for s in sessions {
///     println!("{}: {} events from {}", s.session_id, s.events, s.first.to_rfc3339());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SessionSummary {
    /// The session.
    pub session_id: Uuid,
    /// Its first event's time in the range.
    pub first: Timestamp,
    /// Its last event's time in the range.
    pub last: Timestamp,
    /// How many events it has in the range.
    pub events: u64,
    /// The categories of those events.
    pub categories: Vec<String>,
}

/// A rejected event, as recorded in `event_errors`.
///
/// ```no_run
/// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
/// use futures::TryStreamExt;
/// let rejects: Vec<eye_client::StoredReject> =
///     client.errors(eye_client::ErrorFilter::default().client("demo")).try_collect().await?;
/// for r in rejects {
///     println!("{} {} at {}: {}", r.received.to_rfc3339(), r.code, r.pointer, r.message);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StoredReject {
    /// The reject's own id.
    pub reject_id: String,
    /// Who rejected it (`gateway` or `consumer`).
    pub source: String,
    /// The client that sent it.
    pub client_id: String,
    /// When it was received.
    pub received: Timestamp,
    /// The error code (`schema_violation`, ...).
    pub code: String,
    /// What was wrong.
    pub message: String,
    /// Where in the event (an RFC 6901 pointer).
    pub pointer: String,
    /// The event's category, when it had a readable one.
    pub category: String,
    /// The event's session id as sent, when readable.
    pub session_id: String,
    /// The event's id, when it had one.
    pub event_id: String,
    /// The event's raw body, size-capped.
    pub raw: String,
    /// Whether `raw` was cut.
    pub raw_truncated: bool,
}

/// One page of a list read.
///
/// ```no_run
/// # async fn example(client: eye_client::Client) -> Result<(), eye_client::QueryError> {
/// let page = client.events_page(&eye_client::EventFilter::default(), None).await?;
/// println!("{} events, more: {}", page.items.len(), page.next_cursor.is_some());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows of this page, in order.
    pub items: Vec<T>,
    /// Pass it back (with the same filters) for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Filters of [`crate::Client::events`]: any combination, all optional.
///
/// ```
/// use eye_client::{EventFilter, Timestamp};
/// let filter = EventFilter::default()
///     .category("party")
///     .from(Timestamp::parse("2021-09-26 00:00:00").unwrap())
///     .to(Timestamp::parse("2021-09-27 00:00:00").unwrap())
///     .page_size(1000);
/// assert_eq!(filter.category.as_deref(), Some("party"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this session's events.
    pub session_id: Option<Uuid>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this name.
    pub name: Option<String>,
    /// Events that occurred at or after this time.
    pub from: Option<Timestamp>,
    /// Events that occurred before this time.
    pub to: Option<Timestamp>,
    /// Rows per request (the service's default when `None`: 100).
    pub page_size: Option<u32>,
}

/// Filters of [`crate::Client::sessions`].
///
/// ```
/// let filter = eye_client::SessionFilter::default().category("party");
/// assert!(filter.from.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only sessions with an event of this category in the range.
    pub category: Option<String>,
    /// Counts events at or after this time.
    pub from: Option<Timestamp>,
    /// Counts events before this time.
    pub to: Option<Timestamp>,
    /// Rows per request.
    pub page_size: Option<u32>,
}

/// Filters of [`crate::Client::errors`].
///
/// ```
/// let filter = eye_client::ErrorFilter::default().code("schema_violation").client("demo");
/// assert_eq!(filter.client.as_deref(), Some("demo"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFilter {
    /// Only this error code.
    pub code: Option<String>,
    /// Only this client's rejects.
    pub client: Option<String>,
    /// Rejects received at or after this time.
    pub from: Option<Timestamp>,
    /// Rejects received before this time.
    pub to: Option<Timestamp>,
    /// Rows per request.
    pub page_size: Option<u32>,
}

/// Builder-style setters shared by the filters.
macro_rules! setters {
    ($t:ty { $($field:ident : $doc:literal),* }) => {
        impl $t {
            $(
                #[doc = $doc]
                pub fn $field(mut self, value: impl Into<String>) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
            /// Only rows at or after this time.
            pub fn from(mut self, from: Timestamp) -> Self {
                self.from = Some(from);
                self
            }
            /// Only rows before this time.
            pub fn to(mut self, to: Timestamp) -> Self {
                self.to = Some(to);
                self
            }
            /// Rows per request to the service (at most its `--max-limit`, 10,000 by default).
            pub fn page_size(mut self, rows: u32) -> Self {
                self.page_size = Some(rows);
                self
            }
        }
    };
}

setters!(EventFilter {
    category: "Only this category.",
    name: "Only this name."
});
setters!(SessionFilter {
    category: "Only sessions with an event of this category."
});
setters!(ErrorFilter {
    code: "Only this error code.",
    client: "Only this client's rejects."
});

impl EventFilter {
    /// Only this session's events.
    ///
    /// ```
    /// let filter = eye_client::EventFilter::default().session(uuid::Uuid::nil());
    /// assert_eq!(filter.session_id, Some(uuid::Uuid::nil()));
    /// ```
    pub fn session(mut self, session_id: Uuid) -> Self {
        self.session_id = Some(session_id);
        self
    }

    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(s) = self.session_id {
            p.push(("session_id", s.to_string()));
        }
        push(&mut p, "category", &self.category);
        push(&mut p, "name", &self.name);
        range(&mut p, self.from, self.to, self.page_size);
        p
    }
}

impl SessionFilter {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        push(&mut p, "category", &self.category);
        range(&mut p, self.from, self.to, self.page_size);
        p
    }
}

impl ErrorFilter {
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        push(&mut p, "code", &self.code);
        push(&mut p, "client", &self.client);
        range(&mut p, self.from, self.to, self.page_size);
        p
    }
}

fn push(p: &mut Vec<(&'static str, String)>, name: &'static str, value: &Option<String>) {
    if let Some(v) = value {
        p.push((name, v.clone()));
    }
}

fn range(
    p: &mut Vec<(&'static str, String)>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    page_size: Option<u32>,
) {
    if let Some(t) = from {
        p.push(("from", t.to_rfc3339()));
    }
    if let Some(t) = to {
        p.push(("to", t.to_rfc3339()));
    }
    if let Some(n) = page_size {
        p.push(("limit", n.to_string()));
    }
}

/// The wire shape of a page; the rows' member is named for the route.
#[derive(Deserialize)]
struct WirePage<T> {
    #[serde(alias = "sessions", alias = "errors")]
    events: Vec<T>,
    next_cursor: Option<String>,
}

/// Reads from one query service with one read token.
#[derive(Clone)]
pub(crate) struct Reader {
    pub(crate) http: reqwest::Client,
    /// The service's base URL, ending in `/`.
    pub(crate) base: reqwest::Url,
    pub(crate) token: HeaderValue,
    pub(crate) timeout: std::time::Duration,
}

impl Reader {
    /// GETs one page of `path` (relative to the base) with `params` and `cursor`.
    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&'static str, String)],
        cursor: Option<&str>,
    ) -> Result<Page<T>, QueryError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| QueryError::InvalidParameter(format!("{path}: {e}")))?;
        let mut request = self
            .http
            .get(url)
            .timeout(self.timeout)
            .header(AUTHORIZATION, self.token.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .query(params);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request.send().await.map_err(QueryError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(QueryError::Transport)?;
        if !status.is_success() {
            return Err(status_error(status.as_u16(), &body));
        }
        let page: WirePage<T> =
            serde_json::from_slice(&body).map_err(|e| QueryError::Decode(e.to_string()))?;
        Ok(Page {
            items: page.events,
            next_cursor: page.next_cursor,
        })
    }
}

/// A [`QueryError::Status`] from a problem document (or the body's start).
fn status_error(status: u16, body: &[u8]) -> QueryError {
    #[derive(Deserialize)]
    struct Problem {
        detail: Option<String>,
        title: Option<String>,
        parameter: Option<String>,
    }
    match serde_json::from_slice::<Problem>(body) {
        Ok(p) => QueryError::Status {
            status,
            detail: p.detail.or(p.title).unwrap_or_default(),
            parameter: p.parameter,
        },
        Err(_) => QueryError::Status {
            status,
            detail: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            parameter: None,
        },
    }
}

/// The path of one session's events.
pub(crate) fn session_events_path(session_id: &Uuid) -> String {
    format!("v1/sessions/{session_id}/events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_documented_parameters() {
        let f = EventFilter::default()
            .session(Uuid::nil())
            .category("page interaction")
            .name("Click")
            .from(Timestamp::from_micros(0))
            .to(Timestamp::from_micros(1_000_000))
            .page_size(7);
        assert_eq!(
            f.params(),
            vec![
                ("session_id", Uuid::nil().to_string()),
                ("category", "page interaction".to_owned()),
                ("name", "Click".to_owned()),
                ("from", "1970-01-01T00:00:00.000000Z".to_owned()),
                ("to", "1970-01-01T00:00:01.000000Z".to_owned()),
                ("limit", "7".to_owned()),
            ]
        );
        assert_eq!(
            ErrorFilter::default().code("x").client("demo").params(),
            vec![("code", "x".to_owned()), ("client", "demo".to_owned())]
        );
        assert!(SessionFilter::default().params().is_empty());
    }

    #[test]
    fn pages_of_each_route_decode() {
        let events: WirePage<StoredEvent> = serde_json::from_str(
            r#"{"events": [{"event_id": "e", "client_id": "demo",
                "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "party",
                "name": "AppName", "data": {"host": "h"}, "timestamp": "2021-09-26T09:15:27.243860Z"}],
                "next_cursor": "abc"}"#,
        )
        .expect("events page");
        assert_eq!(
            events.events[0].timestamp.as_micros(),
            1_632_647_727_243_860
        );
        assert_eq!(events.next_cursor.as_deref(), Some("abc"));
        let sessions: WirePage<SessionSummary> = serde_json::from_str(
            r#"{"sessions": [{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
                "first": "2021-09-26T09:15:27.243860Z", "last": "2021-09-26T09:15:28.000000Z",
                "events": 2, "categories": ["party"]}], "next_cursor": null}"#,
        )
        .expect("sessions page");
        assert_eq!(sessions.events[0].events, 2);
        assert!(sessions.next_cursor.is_none());
    }

    #[test]
    fn problems_name_their_parameter() {
        let e = status_error(
            400,
            br#"{"title": "Bad parameter", "detail": "from is not a time", "parameter": "from"}"#,
        );
        match e {
            QueryError::Status {
                status, parameter, ..
            } => assert_eq!((status, parameter.as_deref()), (400, Some("from"))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            status_error(502, b"<html>"),
            QueryError::Status { status: 502, .. }
        ));
    }
}
