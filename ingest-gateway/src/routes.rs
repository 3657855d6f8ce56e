//! The HTTP API: routes, their shared state and the request counter.
//!
//! - `POST /v1/events`: validate and publish; see `response.rs` for the answer.
//! - `POST /v1/validate`: the same checks and answer, publishing nothing.
//! - `GET /v1/schemas`: the categories, each with its event names (when its
//!   schema lists them) and the URL of its schema.
//! - `GET /v1/schemas/{category}`: the category's JSON Schema.
//!
//! Schemas are public (they hold no secrets and help client developers); the
//! two POST routes need a registered client's credentials.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eye_contract::{Event, Timestamp, Validator};
use eye_server_kit::clients::ClientRegistry;
use eye_server_kit::http::count_requests;
use serde_json::{json, Value};

use crate::auth::Sender;
use crate::body::{self, BodyLimits};
use crate::check::{self, Checked, Outcome, RawBody};
use crate::metrics::Metrics;
use crate::problem::RequestError;
use crate::publish::Publisher;
use crate::response::IngestResponse;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    validator: Validator,
    clients: Arc<ClientRegistry>,
    publisher: Arc<Publisher>,
    limits: BodyLimits,
    raw_cap: usize,
    metrics: Metrics,
}

/// The parts of an [`AppState`].
pub struct StateParts {
    /// The contract's validator, with the configured limits and time rules.
    pub validator: Validator,
    /// The registered clients.
    pub clients: Arc<ClientRegistry>,
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
            validator: parts.validator,
            clients: parts.clients,
            publisher: parts.publisher,
            limits: parts.limits,
            raw_cap: parts.raw_cap,
            metrics: parts.metrics,
        }))
    }

    /// The registered clients.
    pub fn clients(&self) -> &ClientRegistry {
        &self.0.clients
    }
}

/// The API router, with request counting.
pub fn router(state: AppState) -> Router {
    let metrics = state.0.metrics.clone();
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/validate", post(post_validate))
        .route("/v1/schemas", get(get_schemas))
        .route("/v1/schemas/{category}", get(get_schema))
        .route("/openapi.json", get(openapi))
        // Bodies are read by `body::read` with the configured limit instead.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            metrics.requests,
            count_requests,
        ))
}

async fn post_events(
    State(state): State<AppState>,
    Sender(client): Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RequestError> {
    let Checked { outcomes, rejects } = check_request(&state, &client.id, &headers, body).await?;
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
    Sender(client): Sender,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RequestError> {
    let Checked { outcomes, .. } = check_request(&state, &client.id, &headers, body).await?;
    let valid = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Valid(_)))
        .count();
    Ok(IngestResponse::new(outcomes, vec![Ok(()); valid]).into_http(true))
}

/// Reads the body and checks each event, on the blocking pool.
async fn check_request(
    state: &AppState,
    client: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Checked, RequestError> {
    let format = body::format(headers)?;
    let encoding = body::encoding(headers)?;
    let bytes = body::read(headers, body, &state.0.limits).await?;
    let state = state.clone();
    let client = client.to_owned();
    let now = Timestamp::now();
    tokio::task::spawn_blocking(move || {
        let cx = check::Context {
            validator: &state.0.validator,
            client: &client,
            raw_cap: state.0.raw_cap,
            now,
        };
        let raw = RawBody {
            bytes,
            encoding,
            format,
        };
        check::check(&cx, raw, state.0.limits)
    })
    .await
    .map_err(|e| RequestError::Internal(format!("checking events failed: {e}")))?
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
    let registry = state.0.validator.registry();
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
    let schema = state
        .0
        .validator
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
