//! CORS for browser senders: preflights of `POST /v1/events` and
//! `/v1/validate`, and `Access-Control-Allow-Origin` on the answers.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//! carries no credential, so it cannot be checked against one write key. It
//! is answered 204 with the CORS headers when *some* registered write key
//! allows the origin, and 403 without them otherwise. That is safe because the
//! preflight only lets the browser send the real request, and the real
//! request is checked against its own key's origins (403 when that key does
//! not allow the origin, see `auth.rs`); and it tells a browser at an origin
//! nobody registered "no" before it sends anything.
//!
//! Every answer to a request from an origin some key allows carries
//! `Access-Control-Allow-Origin: <that origin>`, errors included, so the page
//! can read why its request failed; every answer carries `Vary: Origin`, so
//! caches keep the answers for different origins apart. No credentials mode
//! (cookies) is involved: keys travel in the URL or `Authorization`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::origin;
use crate::problem::RequestError;
use crate::routes::AppState;

/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_SECS: u32 = 600;
/// The request headers browser senders may use.
pub const ALLOWED_HEADERS: &str =
    "content-type, authorization, content-encoding, x-eye-client, x-eye-timestamp, x-eye-signature";

/// Answers `OPTIONS` on the ingest routes.
pub async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let origin = match origin(&headers) {
        Ok(Some(origin)) => origin,
        // Not a CORS preflight: say what the route takes.
        Ok(None) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
            return response;
        }
        Err(error) => return error.into_response(),
    };
    let method = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let refused = if !state.clients().origin_allowed(origin) {
        Some(format!(
            "origin {origin:?} is not allowed by any write key; add it to a key's allowed_origins"
        ))
    } else if !method.eq_ignore_ascii_case("POST") {
        Some(format!(
            "only POST is allowed here, not {method:?} (Access-Control-Request-Method)"
        ))
    } else {
        None
    };
    let mut response = match refused {
        Some(reason) => RequestError::Forbidden(reason).into_response(),
        None => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let h = response.headers_mut();
            allow_origin(h, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(MAX_AGE_SECS),
            );
            response
        }
    };
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// Middleware adding `Access-Control-Allow-Origin` (for an allowed origin)
/// and `Vary: Origin` to every answer of the routes it wraps.
pub async fn allow_origins(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let origin = match origin(request.headers()) {
        Ok(origin) => origin.map(str::to_owned),
        Err(_) => None,
    };
    let is_preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if is_preflight {
        return response;
    }
    let headers = response.headers_mut();
    if let Some(origin) = origin {
        if state.clients().origin_allowed(&origin) {
            allow_origin(headers, &origin);
        }
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn allow_origin(headers: &mut HeaderMap, origin: &str) {
    // The origin came in a header, so it is a valid header value; if it were
    // not, answering without the header is the safe side.
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
}
