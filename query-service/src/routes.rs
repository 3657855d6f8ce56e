//! The HTTP API: routes, their shared state and the request counter.
//!
//! - `GET /v1/sessions/{session_id}/events`: one session's events in order.
//! - `GET /v1/events`: events by any of `session_id`, `category`, `name`,
//!   `from`, `to`; `POST /v1/events/search` takes the same as a JSON body.
//! - `GET /v1/sessions`: sessions with events in a time range.
//! - `GET /v1/errors`: rejected events by time, `code`, `client`.
//! - `GET /v1/stats/events_per_hour`, `GET /v1/stats/errors_per_hour`:
//!   counts per hour for charts (see `stats.rs`; no pages).
//!
//! Every route takes `limit` and `cursor`, answers JSON pages by default and
//! NDJSON exports for `Accept: application/x-ndjson`, and needs a read token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use eye_server_kit::clients::ClientRegistry;
use eye_server_kit::http::count_requests;
use eye_server_kit::reload::SharedClients;

use crate::answer::{Format, Read, Reader};
use crate::auth::ReadAccess;
use crate::cursor::{Binding, Position};
use crate::error::ApiError;
use crate::params::{self, Limits, Page, RawParams};
use crate::rows::{ErrorRow, EventRow, Output, SessionRow};
use crate::sql::{self, Statement};
use crate::stats;

/// Largest search body.
const MAX_SEARCH_BODY: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    clients: Arc<SharedClients>,
    reader: Reader,
    page: Limits,
    export: Limits,
}

impl AppState {
    /// Bundles the parts: the registry (reloaded on SIGHUP), the reader, the
    /// JSON page limits and the NDJSON export limits.
    pub fn new(clients: Arc<SharedClients>, reader: Reader, page: Limits, export: Limits) -> Self {
        AppState(Arc::new(Inner {
            clients,
            reader,
            page,
            export,
        }))
    }

    /// The registered clients in force now.
    pub fn clients(&self) -> Arc<ClientRegistry> {
        self.0.clients.current()
    }

    /// The reader (ClickHouse, limits, metrics).
    pub fn reader(&self) -> &Reader {
        &self.0.reader
    }

    fn limits(&self, format: Format) -> Limits {
        match format {
            Format::Json => self.0.page,
            Format::Ndjson => self.0.export,
        }
    }

    async fn events(
        &self,
        access: &ReadAccess,
        raw: RawParams,
        format: Format,
        route: &'static str,
    ) -> Result<Response, ApiError> {
        let (filters, page) = params::events(raw, self.limits(format))?;
        let scope = access.only_client();
        let fingerprint = format!("{filters:?}|{scope:?}");
        let build = |after: Option<&Position>, rows| sql::events(&filters, scope, after, rows);
        self.read::<EventRow>(format, route, &fingerprint, page, build)
            .await
    }

    /// Runs a read of `T` rows: decodes the cursor (bound to `fingerprint`,
    /// the filters and scope), builds the statement for `limit + 1` rows
    /// after it, and answers as `format`.
    async fn read<T: Output>(
        &self,
        format: Format,
        route: &'static str,
        fingerprint: &str,
        page: Page,
        build: impl FnOnce(Option<&Position>, u64) -> Statement,
    ) -> Result<Response, ApiError> {
        let binding = Binding::new(T::MEMBER, fingerprint);
        let after = page
            .cursor
            .as_deref()
            .map(|c| binding.decode(c))
            .transpose()?;
        let read = Read {
            statement: build(after.as_ref(), page.limit.saturating_add(1)),
            binding,
            limit: page.limit,
            route,
        };
        self.0.reader.answer::<T>(read, format).await
    }
}

/// The API router, with request counting.
pub fn router(state: AppState) -> Router {
    let metrics = state.0.reader.metrics.clone();
    Router::new()
        .route("/v1/sessions/{session_id}/events", get(session_events))
        .route("/v1/events", get(get_events))
        .route("/v1/events/search", post(search_events))
        .route("/v1/sessions", get(get_sessions))
        .route("/v1/errors", get(get_errors))
        .route(stats::EVENTS_ROUTE, get(stats::events_per_hour))
        .route(stats::ERRORS_ROUTE, get(stats::errors_per_hour))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(MAX_SEARCH_BODY))
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            metrics.requests,
            count_requests,
        ))
}

async fn session_events(
    State(state): State<AppState>,
    access: ReadAccess,
    headers: HeaderMap,
    Path(session_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let raw = RawParams::from_query(query.as_deref()).with_path("session_id", session_id)?;
    state
        .events(
            &access,
            raw,
            Format::of(&headers),
            "/v1/sessions/{session_id}/events",
        )
        .await
}

async fn get_events(
    State(state): State<AppState>,
    access: ReadAccess,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let raw = RawParams::from_query(query.as_deref());
    state
        .events(&access, raw, Format::of(&headers), "/v1/events")
        .await
}

async fn search_events(
    State(state): State<AppState>,
    access: ReadAccess,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge(MAX_SEARCH_BODY),
        _ => ApiError::BadBody(rejection.body_text()),
    })?;
    // One place for the parameters: the body.
    if let Some((name, _)) = RawParams::from_query(query.as_deref()).into_first() {
        return Err(ApiError::param(
            &name,
            "search parameters go in the JSON body, not the query string",
        ));
    }
    let raw = RawParams::from_json(&body)?;
    state
        .events(&access, raw, Format::of(&headers), "/v1/events/search")
        .await
}

async fn get_sessions(
    State(state): State<AppState>,
    access: ReadAccess,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let format = Format::of(&headers);
    let raw = RawParams::from_query(query.as_deref());
    let (filters, page) = params::sessions(raw, state.limits(format))?;
    let scope = access.only_client();
    let fingerprint = format!("{filters:?}|{scope:?}");
    let build = |after: Option<&Position>, rows| sql::sessions(&filters, scope, after, rows);
    state
        .read::<SessionRow>(format, "/v1/sessions", &fingerprint, page, build)
        .await
}

async fn get_errors(
    State(state): State<AppState>,
    access: ReadAccess,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let format = Format::of(&headers);
    let raw = RawParams::from_query(query.as_deref());
    let (mut filters, page) = params::errors(raw, state.limits(format))?;
    narrow_errors(&access, &mut filters.client)?;
    let fingerprint = format!("{filters:?}");
    let build = |after: Option<&Position>, rows| sql::errors(&filters, after, rows);
    state
        .read::<ErrorRow>(format, "/v1/errors", &fingerprint, page, build)
        .await
}

/// Narrows a read of rejects to the token's client when its scope is one
/// client: asking for another client's rejects is 403.
pub fn narrow_errors(access: &ReadAccess, client: &mut Option<String>) -> Result<(), ApiError> {
    if let Some(own) = access.only_client() {
        match client {
            Some(asked) if asked != own => {
                return Err(ApiError::Forbidden(format!(
                    "this read token only reads the rejects of client {own:?}"
                )))
            }
            _ => *client = Some(own.to_owned()),
        }
    }
    Ok(())
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document (`openapi.json`
/// at the crate root, checked against these routes by the client's tests).
async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

/// Answers 404 for unknown paths as problem+json too.
pub async fn not_found() -> impl IntoResponse {
    eye_server_kit::problem::Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such route; see /v1/events, /v1/sessions, /v1/errors".to_owned(),
    )
}
