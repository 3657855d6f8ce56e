//! Authentication of senders, as an extractor: a handler that takes a
//! [`Sender`] only runs for a registered client.
//!
//! Today a sender presents a client's write key as `Authorization: Bearer <key>`.
//! More than one `Authorization` header is refused rather than guessed at.
//! Signed requests and origin checks (DESIGN.md, "Security") plug in here.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use eye_server_kit::clients::{Client, ClientRegistry};
use eye_server_kit::http::{bearer, BearerError};

use crate::problem::RequestError;
use crate::routes::AppState;

/// The authenticated client of a request.
#[derive(Debug, Clone)]
pub struct Sender(pub Arc<Client>);

impl FromRequestParts<AppState> for Sender {
    type Rejection = RequestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(&parts.headers, state.clients()).map(Sender)
    }
}

/// The client whose write key the request carries.
pub fn authenticate(
    headers: &HeaderMap,
    clients: &ClientRegistry,
) -> Result<Arc<Client>, RequestError> {
    let key = bearer(headers).map_err(|error| {
        RequestError::Unauthenticated(match error {
            BearerError::Missing => {
                "no credentials: send the client's write key as `Authorization: Bearer <key>`"
            }
            BearerError::Repeated => "more than one Authorization header",
            BearerError::Malformed => "the Authorization header must be `Bearer <write key>`",
        })
    })?;
    clients
        .by_write_key(key)
        .map(|(client, _)| Arc::clone(client))
        .ok_or(RequestError::Unauthenticated("unknown write key"))
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderValue};

    use super::*;

    fn clients() -> ClientRegistry {
        ClientRegistry::from_toml(
            "[[clients]]\nid = \"demo\"\nwrite_keys = [{ key = \"k1\" }]\n",
            "test",
        )
        .expect("registry")
    }

    fn with_auth(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn a_known_bearer_key_names_its_client() {
        let client = authenticate(&with_auth(&["Bearer k1"]), &clients()).expect("known");
        assert_eq!(client.id, "demo");
        assert!(authenticate(&with_auth(&["bearer  k1 "]), &clients()).is_ok());
    }

    #[test]
    fn missing_malformed_unknown_or_repeated_credentials_are_refused() {
        for headers in [
            with_auth(&[]),
            with_auth(&["k1"]),
            with_auth(&["Basic k1"]),
            with_auth(&["Bearer "]),
            with_auth(&["Bearer k2"]),
            with_auth(&["Bearer k1", "Bearer k1"]),
        ] {
            let error = authenticate(&headers, &clients()).expect_err("refused");
            assert!(matches!(error, RequestError::Unauthenticated(_)), "{error}");
        }
    }
}
