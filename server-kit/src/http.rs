//! HTTP pieces every service's API shares: reading the bearer credential of a
//! request, and counting requests by route and status.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Why a request carries no usable `Authorization: Bearer <credential>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization` header.
    Missing,
    /// More than one: refused rather than guessed at.
    Repeated,
    /// Not `Bearer <credential>` with a non-empty credential.
    Malformed,
}

/// The credential of the request's single `Authorization: Bearer` header
/// (scheme case-insensitive, surrounding spaces ignored). Look it up with
/// the client registry, which compares in constant time.
pub fn bearer(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(BearerError::Missing),
        (Some(_), Some(_)) => return Err(BearerError::Repeated),
        (Some(value), None) => value,
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credential)| credential.trim())
        .filter(|credential| !credential.is_empty())
        .ok_or(BearerError::Malformed)
}

/// Labels of the HTTP requests counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template, e.g. `/v1/events` (`other` for unmatched paths).
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// HTTP requests answered, by route and status.
pub type RequestCounter = Family<RequestLabels, Counter>;

/// Middleware counting every answered request in the counter given as state:
/// `router.layer(axum::middleware::from_fn_with_state(counter, count_requests))`.
pub async fn count_requests(
    State(counter): State<RequestCounter>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    counter
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_auth(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer(&with_auth(&["Bearer k1"])), Ok("k1"));
        assert_eq!(bearer(&with_auth(&["bearer  k1 "])), Ok("k1"));
        assert_eq!(bearer(&with_auth(&[])), Err(BearerError::Missing));
        assert_eq!(
            bearer(&with_auth(&["Bearer a", "Bearer a"])),
            Err(BearerError::Repeated)
        );
        for malformed in ["k1", "Basic k1", "Bearer ", "Bearer"] {
            assert_eq!(
                bearer(&with_auth(&[malformed])),
                Err(BearerError::Malformed),
                "{malformed}"
            );
        }
    }
}
