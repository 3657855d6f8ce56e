//! Authentication of readers, as an extractor: a handler that takes a
//! [`ReadAccess`] only runs for a read token of the client registry.
//!
//! The token comes as `Authorization: Bearer <token>`; the registry compares
//! it in constant time with every token (`eye_server_kit::clients`). More
//! than one `Authorization` header is refused rather than guessed at.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use eye_server_kit::clients::{ClientRegistry, ReadScope};
use eye_server_kit::http::{bearer, BearerError};

use crate::error::ApiError;
use crate::routes::AppState;

/// Who is reading and what they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAccess {
    /// The token's client.
    pub client_id: String,
    /// What the token may read.
    pub scope: ReadScope,
}

impl ReadAccess {
    /// The client every read is narrowed to (scope `client`), or `None` for a
    /// token of scope `admin`, which reads every client's rows.
    pub fn only_client(&self) -> Option<&str> {
        match self.scope {
            ReadScope::Client => Some(&self.client_id),
            ReadScope::Admin => None,
        }
    }
}

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(&parts.headers, &state.clients())
    }
}

/// The access the request's read token gives.
pub fn authenticate(headers: &HeaderMap, clients: &ClientRegistry) -> Result<ReadAccess, ApiError> {
    let token = bearer(headers).map_err(|error| {
        ApiError::Unauthenticated(match error {
            BearerError::Missing => {
                "no credentials: send a read token as `Authorization: Bearer <token>`"
            }
            BearerError::Repeated => "more than one Authorization header",
            BearerError::Malformed => "the Authorization header must be `Bearer <read token>`",
        })
    })?;
    clients
        .by_read_token(token)
        .map(|(client, entry)| ReadAccess {
            client_id: client.id.clone(),
            scope: entry.scope,
        })
        .ok_or(ApiError::Unauthenticated("unknown read token"))
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderValue};

    use super::*;

    fn clients() -> ClientRegistry {
        ClientRegistry::from_toml(
            "[[clients]]\nid = \"demo\"\nwrite_keys = [{ key = \"w1\" }]\n\
             read_tokens = [{ token = \"r1\" }, { token = \"r2\", scope = \"admin\" }]\n",
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
    fn read_tokens_give_their_scope() {
        let own = authenticate(&with_auth(&["Bearer r1"]), &clients()).expect("known");
        assert_eq!(own.only_client(), Some("demo"));
        let all = authenticate(&with_auth(&["bearer r2"]), &clients()).expect("known");
        assert_eq!(all.only_client(), None);
    }

    #[test]
    fn missing_malformed_unknown_or_repeated_tokens_are_refused() {
        for headers in [
            with_auth(&[]),
            with_auth(&["r1"]),
            with_auth(&["Basic r1"]),
            with_auth(&["Bearer "]),
            with_auth(&["Bearer w1"]),
            with_auth(&["Bearer r1", "Bearer r1"]),
        ] {
            let error = authenticate(&headers, &clients()).expect_err("refused");
            assert!(matches!(error, ApiError::Unauthenticated(_)), "{error}");
        }
    }
}
