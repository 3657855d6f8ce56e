//! Running a read and answering with its rows: a JSON page (collected, at
//! most `--max-limit` rows) or an NDJSON export (streamed, see `ndjson.rs`).
//!
//! Both ask ClickHouse for one row more than the limit: if it comes, there is
//! a next page and its cursor is the position of the last row answered.
//! Every query carries `max_execution_time` and is also bounded here, so a
//! slow ClickHouse gives 504, never a hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cursor::Binding;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rows::Output;
use crate::sql::Statement;

/// The media type of NDJSON exports.
pub const NDJSON: &str = "application/x-ndjson";

/// How the client wants the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document, one page.
    Json,
    /// One JSON object per line, streamed.
    Ndjson,
}

impl Format {
    /// NDJSON when `Accept` names it, JSON otherwise.
    pub fn of(headers: &HeaderMap) -> Format {
        let ndjson = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().starts_with(NDJSON)));
        if ndjson {
            Format::Ndjson
        } else {
            Format::Json
        }
    }
}

/// What every read needs: the ClickHouse client, the time limits, the
/// concurrency limit and the metrics.
#[derive(Clone)]
pub struct Reader {
    /// ClickHouse.
    pub clickhouse: clickhouse::Client,
    /// Bound of a JSON answer's query, and of the wait for each export chunk.
    pub query_timeout: Duration,
    /// Bound of a whole export.
    pub export_timeout: Duration,
    /// Queries allowed at once.
    pub permits: Arc<Semaphore>,
    /// Metrics.
    pub metrics: Metrics,
}

/// One read: its statement, its cursor binding, its page size and route.
pub struct Read {
    /// The statement (asking for `limit + 1` rows).
    pub statement: Statement,
    /// The binding of the cursors it hands out.
    pub binding: Binding,
    /// Rows to answer at most.
    pub limit: u64,
    /// The route, for metrics.
    pub route: &'static str,
}

impl Reader {
    /// A permit to run one query, or 503 when too many run.
    pub fn permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| ApiError::Overloaded)
    }

    /// The crate's query for `statement`, with ClickHouse's own time limit.
    pub fn query(&self, statement: &Statement, limit: Duration) -> clickhouse::query::Query {
        statement
            .query(&self.clickhouse)
            .with_setting("max_execution_time", limit.as_secs().max(1).to_string())
    }

    /// Answers `read` as `format`.
    pub async fn answer<T: Output>(
        &self,
        read: Read,
        format: Format,
    ) -> Result<Response, ApiError> {
        match format {
            Format::Json => self.page::<T>(read).await,
            Format::Ndjson => crate::ndjson::export::<T>(self, read).await,
        }
    }

    /// A JSON page: `{"<member>": [...], "next_cursor": "…" | null}`.
    async fn page<T: Output>(&self, read: Read) -> Result<Response, ApiError> {
        let _permit = self.permit()?;
        let started = Instant::now();
        let timeout = self.query_timeout;
        let mut cursor = self
            .query(&read.statement, timeout)
            .fetch::<T>()
            .map_err(|e| ApiError::from_clickhouse(e, timeout))?;
        let collect = async {
            let mut body = Vec::with_capacity(4096);
            body.extend_from_slice(b"{\"");
            body.extend_from_slice(T::MEMBER.as_bytes());
            body.extend_from_slice(b"\":[");
            let mut answered = 0u64;
            let mut last: Option<T> = None;
            let mut more = false;
            while let Some(row) = cursor.next().await? {
                if answered == read.limit {
                    more = true;
                    break;
                }
                if answered > 0 {
                    body.push(b',');
                }
                row.write_json(&mut body);
                answered += 1;
                last = Some(row);
            }
            body.extend_from_slice(b"],\"next_cursor\":");
            match last.filter(|_| more) {
                Some(row) => {
                    let cursor = read.binding.encode(&row.position());
                    body.extend_from_slice(serde_json::Value::from(cursor).to_string().as_bytes());
                }
                None => body.extend_from_slice(b"null"),
            }
            body.push(b'}');
            Ok::<_, clickhouse::error::Error>((body, answered))
        };
        let (body, answered) = match tokio::time::timeout(timeout, collect).await {
            Ok(result) => result.map_err(|e| ApiError::from_clickhouse(e, timeout))?,
            Err(_) => return Err(ApiError::Timeout(timeout)),
        };
        self.metrics
            .observe_query(read.route, started.elapsed(), answered);
        Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_only_when_asked_for() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::of(&headers), Format::Json);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, application/x-ndjson;q=0.9"),
        );
        assert_eq!(Format::of(&headers), Format::Ndjson);
    }
}
