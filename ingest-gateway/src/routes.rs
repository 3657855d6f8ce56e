//! The HTTP API: routes, their shared state and the request counter.
//!
//! - `POST /v1/events`: validate and publish; see `response.rs` for the answer.
//! - `POST /v1/validate`: the same checks and answer, publishing nothing.
//! - `GET /v1/schemas`: the categories, each with its event names (when its
//!   schema lists them) and the URL of its schema.
//! - `GET /v1/schemas/{category}`: the category's JSON Schema.
//!
//! Schemas are public (they hold no secrets and help client developers); the
//! two POST routes need a registered client's credentials (`auth.rs`), are
//! rate limited per client, and answer CORS preflights (`cors.rs`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eye_contract::{Event, Timestamp};
use eye_server_kit::clients::{Client, ClientRegistry};
use eye_server_kit::http::count_requests;
use eye_server_kit::ratelimit::RateLimiter;
use eye_server_kit::reload::SharedClients;
use eye_server_kit::schemas::SharedSchemas;
use serde_json::{json, Value};

use crate::auth::Sender;
use crate::body::{self, BodyLimits};
use crate::check::{self, Checked, Outcome, RawBody};
use crate::cors;
use crate::metrics::Metrics;
use crate::problem::RequestError;
use crate::publish::Publisher;
use crate::response::IngestResponse;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    schemas: Arc<SharedSchemas>,
    clients: Arc<SharedClients>,
    signature_window_secs: u64,
    publisher: Arc<Publisher>,
    limits: BodyLimits,
    raw_cap: usize,
    metrics: Metrics,
    limiter: RateLimiter,
}

/// The parts of an [`AppState`].
pub struct StateParts {
    /// The contract's validator, with the configured limits and time rules,
    /// its schemas reloaded on SIGHUP.
    pub schemas: Arc<SharedSchemas>,
    /// The registered clients (reloaded on SIGHUP).
    pub clients: Arc<SharedClients>,
    /// The replay window of signed requests, in seconds.
    pub signature_window_secs: u64,
    /// The publisher.
    pub publisher: Arc<Publisher>,
    /// Body limits.
    pub limits: BodyLimits,
    /// Bytes of a rejected event kept in its reject record.
    pub raw_cap: usize,
    /// The metrics.
    pub metrics: Metrics,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(parts: StateParts) -> AppState {
        AppState(Arc::new(Inner {
            schemas: parts.schemas,
            clients: parts.clients,
            signature_window_secs: parts.signature_window_secs,
            publisher: parts.publisher,
            limits: parts.limits,
            raw_cap: parts.raw_cap,
            metrics: parts.metrics,
            limiter: RateLimiter::new(),
        }))
    }

    /// The registered clients, as currently loaded.
    pub fn clients(&self) -> Arc<ClientRegistry> {
        self.0.clients.current()
    }

    /// The replay window of signed requests, in seconds.
    pub fn signature_window_secs(&self) -> u64 {
        self.0.signature_window_secs
    }
}

/// The API router, with request counting.
pub fn router(state: AppState) -> Router {
    let metrics = state.0.metrics.clone();
    Router::new()
        .route("/v1/events", post(post_events).options(cors::preflight))
        .route("/v1/validate", post(post_validate).options(cors::preflight))
        .route("/v1/schemas", get(get_schemas))
        .route("/v1/schemas/{category}", get(get_schema))
        .route("/openapi.json", get(openapi))
        // Bodies are read by `body::read` with the configured limit instead.
        .layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            cors::allow_origins,
        ))
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            metrics.requests,
            count_requests,
        ))
}

async fn post_events(
    State(state): State<AppState>,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RequestError> {
    let Checked { outcomes, rejects } = check_request(&state, &sender, &headers, body).await?;
    let client = &sender.client;
    let valid: Vec<&Event> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Valid(event) => Some(event),
            Outcome::Rejected(_) => None,
        })
        .collect();
    // Rejects first: they go out in the background, and are recorded even if
    // the client gives up while its events are being published.
    state.0.publisher.publish_rejects(&client.id, rejects);
    let published = state.0.publisher.publish_events(&client.id, &valid).await;

    let metrics = &state.0.metrics;
    for outcome in &outcomes {
        if let Outcome::Rejected(error) = outcome {
            metrics.count_rejected(error.code);
        }
    }
    for result in &published {
        match result {
            Ok(()) => {
                metrics.accepted.inc();
            }
            Err(code) => metrics.count_failed(*code),
        }
    }
    Ok(IngestResponse::new(outcomes, published).into_http(false))
}

async fn post_validate(
    State(state): State<AppState>,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RequestError> {
    let Checked { outcomes, .. } = check_request(&state, &sender, &headers, body).await?;
    let valid = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Valid(_)))
        .count();
    Ok(IngestResponse::new(outcomes, vec![Ok(()); valid]).into_http(true))
}

/// Refuses a request over its client's rate limit.
fn rate_limited(
    sender: &Sender,
    limit: eye_server_kit::clients::RateLimit,
    retry_after: u64,
) -> RequestError {
    RequestError::RateLimited {
        client: sender.client.id.clone(),
        per_second: limit.events_per_second,
        burst: limit.burst,
        retry_after,
    }
}

/// Bodies up to this size (not compressed) are checked on the request's own
/// task: that takes tens of microseconds, less than handing the work to the
/// blocking pool and back (which cost a tenth of the gateway's CPU on
/// single-event requests). Larger bodies, up to milliseconds of parsing, go to
/// the blocking pool so they never stall other requests.
const INLINE_CHECK_MAX_BYTES: usize = 16 * 1024;

/// Reads the body, checks the signature (over the body as received) and the
/// client's rate limit, and checks each event (small bodies inline, others on
/// the blocking pool), with the client's category allow-list.
async fn check_request(
    state: &AppState,
    sender: &Sender,
    headers: &HeaderMap,
    body: Body,
) -> Result<Checked, RequestError> {
    let client = Arc::clone(&sender.client);
    // An empty bucket refuses before the body is read.
    if let Some(limit) = client.rate_limit {
        if let Err(limited) = state.0.limiter.has_tokens(&client.id, limit) {
            return Err(rate_limited(sender, limit, limited.retry_after_secs()));
        }
    }
    let format = body::format_for(headers, sender.by_write_key())?;
    let encoding = body::encoding(headers)?;
    let bytes = body::read(headers, body, &state.0.limits).await?;
    sender.verify_body(&bytes)?;
    let raw = RawBody {
        bytes,
        encoding,
        format,
    };
    let now = Timestamp::now();
    let checked =
        if raw.bytes.len() <= INLINE_CHECK_MAX_BYTES && encoding == body::Encoding::Identity {
            check_body(state, &client, raw, now)?
        } else {
            let state = state.clone();
            let client = Arc::clone(&client);
            tokio::task::spawn_blocking(move || check_body(&state, &client, raw, now))
                .await
                .map_err(|e| RequestError::Internal(format!("checking events failed: {e}")))??
        };
    // The rate is counted in events.
    if let Some(limit) = client.rate_limit {
        let events = u64::try_from(checked.outcomes.len()).unwrap_or(u64::MAX);
        if let Err(limited) = state.0.limiter.check(&client.id, limit, events) {
            return Err(rate_limited(sender, limit, limited.retry_after_secs()));
        }
    }
    Ok(checked)
}

/// Parses and validates a body's events, with the client's category allow-list.
fn check_body(
    state: &AppState,
    client: &Client,
    raw: RawBody,
    now: Timestamp,
) -> Result<Checked, RequestError> {
    let validator = state.0.schemas.current();
    let cx = check::Context {
        validator: &validator,
        client: &client.id,
        raw_cap: state.0.raw_cap,
        now,
    };
    check::check_with(&cx, raw, state.0.limits, &|category| {
        client.may_send(category)
    })
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document (`openapi.json`
/// at the crate root, checked against these routes by the client's tests).
async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

async fn get_schemas(State(state): State<AppState>) -> Json<Value> {
    let validator = state.0.schemas.current();
    let registry = validator.registry();
    let categories: Vec<Value> = registry
        .categories()
        .map(|category| {
            json!({
                "category": category,
                "names": registry.event_names(category),
                "schema": format!("/v1/schemas/{}", percent_encode(category)),
            })
        })
        .collect();
    Json(json!({ "categories": categories }))
}

async fn get_schema(
    State(state): State<AppState>,
    Path(category): Path<String>,
) -> Result<Response, RequestError> {
    let validator = state.0.schemas.current();
    let schema = validator
        .registry()
        .schema(&category)
        .ok_or(RequestError::UnknownCategory(category))?;
    let mut response = Json(schema).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/schema+json"),
    );
    Ok(response)
}

/// Percent-encodes a category for a URL path segment (categories may hold spaces).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn categories_are_percent_encoded_for_urls() {
        assert_eq!(
            super::percent_encode("page interaction"),
            "page%20interaction"
        );
        assert_eq!(super::percent_encode("a/b"), "a%2Fb");
        assert_eq!(super::percent_encode("é"), "%C3%A9");
    }
}
