//! Counts per hour, for charts: `GET /v1/stats/events_per_hour` (events by
//! hour of occurrence) and `GET /v1/stats/errors_per_hour` (rejects by hour
//! of reception and code).
//!
//! A chart of 10,000 sessions cannot be drawn from one page of rows, and
//! fetching every page to count them would be a request per page; ClickHouse
//! counts in one statement instead. Both routes need `from` and `to`, at most
//! 92 days apart, so an answer has at most 2,208 hours (times the codes);
//! only hours with rows are listed. Same token, scopes, timeouts, concurrency
//! limit and problem+json as every read.

use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Json, Response};
use eye_contract::Timestamp;
use serde::{Deserialize, Serialize};

use crate::answer::Reader;
use crate::auth::ReadAccess;
use crate::error::ApiError;
use crate::params::{self, Range, RawParams};
use crate::routes::AppState;
use crate::sql::{self, Statement};

/// Route of the events count (metrics label).
pub const EVENTS_ROUTE: &str = "/v1/stats/events_per_hour";
/// Route of the rejects count (metrics label).
pub const ERRORS_ROUTE: &str = "/v1/stats/errors_per_hour";

/// One hour's events.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct EventHour {
    /// Start of the hour, UNIX seconds.
    pub hour: u32,
    /// Events in it.
    pub events: u64,
}

/// One hour's rejects of one code.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct ErrorHour {
    /// Start of the hour, UNIX seconds.
    pub hour: u32,
    /// Error code.
    pub code: String,
    /// Rejects of that code in it.
    pub errors: u64,
}

#[derive(Serialize)]
struct Answer<T> {
    from: String,
    to: String,
    hours: Vec<T>,
}

#[derive(Serialize)]
struct EventHourJson {
    hour: String,
    events: u64,
}

#[derive(Serialize)]
struct ErrorHourJson {
    hour: String,
    code: String,
    errors: u64,
}

/// RFC 3339 of a UNIX second.
fn instant(seconds: u32) -> String {
    Timestamp::from_micros(i64::from(seconds) * 1_000_000).to_rfc3339()
}

fn answer<T: Serialize>(range: Range, hours: Vec<T>) -> Response {
    let text = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    Json(Answer {
        from: text(range.from),
        to: text(range.to),
        hours,
    })
    .into_response()
}

/// Runs `statement` and collects its (few, bounded) rows within the query
/// timeout, under the concurrency limit, observed in the metrics.
async fn rows<T>(
    reader: &Reader,
    statement: &Statement,
    route: &'static str,
) -> Result<Vec<T>, ApiError>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    let _permit = reader.permit()?;
    let started = Instant::now();
    let timeout = reader.query_timeout;
    let fetch = reader.query(statement, timeout).fetch_all::<T>();
    let rows = match tokio::time::timeout(timeout, fetch).await {
        Ok(rows) => rows.map_err(|e| ApiError::from_clickhouse(e, timeout))?,
        Err(_) => return Err(ApiError::Timeout(timeout)),
    };
    let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    reader
        .metrics
        .observe_query(route, started.elapsed(), count);
    Ok(rows)
}

/// `GET /v1/stats/events_per_hour?from&to[&category][&name]`.
pub async fn events_per_hour(
    State(state): State<AppState>,
    access: ReadAccess,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filters = params::event_stats(RawParams::from_query(query.as_deref()))?;
    let statement = sql::events_per_hour(&filters, access.only_client());
    let hours: Vec<EventHour> = rows(state.reader(), &statement, EVENTS_ROUTE).await?;
    let hours = hours
        .into_iter()
        .map(|h| EventHourJson {
            hour: instant(h.hour),
            events: h.events,
        })
        .collect();
    Ok(answer(filters.range, hours))
}

/// `GET /v1/stats/errors_per_hour?from&to[&code][&client]`.
pub async fn errors_per_hour(
    State(state): State<AppState>,
    access: ReadAccess,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut filters = params::error_stats(RawParams::from_query(query.as_deref()))?;
    crate::routes::narrow_errors(&access, &mut filters.client)?;
    let statement = sql::errors_per_hour(&filters);
    let hours: Vec<ErrorHour> = rows(state.reader(), &statement, ERRORS_ROUTE).await?;
    let hours = hours
        .into_iter()
        .map(|h| ErrorHourJson {
            hour: instant(h.hour),
            code: h.code,
            errors: h.errors,
        })
        .collect();
    Ok(answer(filters.range, hours))
}
