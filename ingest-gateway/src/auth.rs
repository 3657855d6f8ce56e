//! Authentication of senders, as an extractor: a handler that takes a
//! [`Sender`] only runs for a registered client.
//!
//! A request carries exactly one credential (more than one is refused rather
//! than guessed at):
//! - **a signature** (server-side senders): `X-Eye-Client`, `X-Eye-Timestamp`
//!   and `X-Eye-Signature`, see `eye_server_kit::signature`. The client and the
//!   timestamp's replay window are checked here, before the body is read; the
//!   signature itself needs the raw body, so the handler checks it with
//!   [`Sender::verify_body`] once the body is in;
//! - **a write key** (browsers): `Authorization: Bearer <key>` or the query
//!   parameter `?write_key=<key>` (`navigator.sendBeacon` cannot set headers).
//!   When the request has an `Origin` header (a browser sent it), the key must
//!   allow that origin, else 403.
//!
//! Failures are 401 (no or a wrong credential) or 403 (a right key from the
//! wrong origin); no message quotes a credential.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName};
use eye_contract::headers::{HTTP_CLIENT, HTTP_SIGNATURE, HTTP_TIMESTAMP};
use eye_server_kit::clients::{Client, ClientRegistry};
use eye_server_kit::http::{bearer, BearerError};
use eye_server_kit::signature::{self, Digest};

use crate::problem::RequestError;
use crate::routes::AppState;

/// The query parameter of a write key.
pub const WRITE_KEY_PARAM: &str = "write_key";

/// The authenticated client of a request, and how it authenticated.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The client.
    pub client: Arc<Client>,
    /// The credential it used.
    pub via: Via,
}

/// How a sender authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    /// A public write key (browsers; the only way `text/plain` bodies are accepted).
    WriteKey,
    /// A signature, still to be checked over the body.
    Signed {
        /// `X-Eye-Timestamp` as sent (it is part of the signed text).
        timestamp: String,
        /// The `v1` digests of `X-Eye-Signature`.
        signatures: Vec<Digest>,
    },
}

impl Sender {
    /// Whether the request used a write key.
    pub fn by_write_key(&self) -> bool {
        matches!(self.via, Via::WriteKey)
    }

    /// For a signed request, checks the signature over the raw body (as
    /// received, before decompression) with each of the client's secrets.
    pub fn verify_body(&self, raw_body: &[u8]) -> Result<(), RequestError> {
        match &self.via {
            Via::WriteKey => Ok(()),
            Via::Signed {
                timestamp,
                signatures,
            } => {
                let secrets = self.client.hmac_secrets.iter().map(|s| &s.secret);
                if signature::verify(secrets, timestamp, raw_body, signatures) {
                    Ok(())
                } else {
                    Err(unauthenticated(
                        "the signature does not match the body and timestamp under any of the client's secrets",
                    ))
                }
            }
        }
    }
}

impl FromRequestParts<AppState> for Sender {
    type Rejection = RequestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(
            &parts.headers,
            parts.uri.query(),
            &state.clients(),
            unix_now(),
            state.signature_window_secs(),
        )
    }
}

/// Seconds since the epoch now (0 if the clock is before it).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn unauthenticated(message: &str) -> RequestError {
    RequestError::Unauthenticated(message.to_owned())
}

/// The sender of a request with `headers` and `query`, at unix time `now`,
/// with a replay window of `window` seconds.
pub fn authenticate(
    headers: &HeaderMap,
    query: Option<&str>,
    clients: &ClientRegistry,
    now: i64,
    window: u64,
) -> Result<Sender, RequestError> {
    let signed = [HTTP_CLIENT, HTTP_TIMESTAMP, HTTP_SIGNATURE]
        .iter()
        .any(|name| headers.contains_key(*name));
    let has_bearer = headers.contains_key(header::AUTHORIZATION);
    let query_keys = query_write_keys(query);
    let presented =
        usize::from(signed) + usize::from(has_bearer) + usize::from(!query_keys.is_empty());
    if presented > 1 {
        return Err(unauthenticated(
            "more than one credential: send a signature (X-Eye-*), `Authorization: Bearer <write key>` or `?write_key=`, only one of them",
        ));
    }
    if signed {
        return signed_sender(headers, clients, now, window);
    }
    let key = if has_bearer {
        bearer(headers).map_err(|error| {
            unauthenticated(match error {
                BearerError::Missing => "no credentials",
                BearerError::Repeated => "more than one Authorization header",
                BearerError::Malformed => "the Authorization header must be `Bearer <write key>`",
            })
        })?
    } else {
        match query_keys.as_slice() {
            [] => {
                return Err(unauthenticated(
                    "no credentials: sign the request (X-Eye-Client, X-Eye-Timestamp, X-Eye-Signature) or send a write key as `Authorization: Bearer <key>` or `?write_key=<key>`",
                ))
            }
            [key] if !key.trim().is_empty() => key.trim(),
            [_] => return Err(unauthenticated("the write_key parameter is empty")),
            _ => return Err(unauthenticated("write_key is given more than once")),
        }
    };
    let (client, entry) = clients
        .by_write_key(key)
        .ok_or_else(|| unauthenticated("unknown write key"))?;
    if let Some(origin) = origin(headers)? {
        if !entry.allows_origin(origin) {
            return Err(RequestError::Forbidden(format!(
                "this write key of client {:?} may not be used from origin {origin:?}: add the origin to the key's allowed_origins",
                client.id
            )));
        }
    }
    Ok(Sender {
        client: Arc::clone(client),
        via: Via::WriteKey,
    })
}

/// The values of `write_key` in the query string.
fn query_write_keys(query: Option<&str>) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == WRITE_KEY_PARAM)
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// The request's single `Origin` header, if any.
pub fn origin(headers: &HeaderMap) -> Result<Option<&str>, RequestError> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| RequestError::Forbidden("the Origin header is not ASCII".to_owned())),
        (Some(_), Some(_)) => Err(RequestError::Forbidden(
            "more than one Origin header".to_owned(),
        )),
    }
}

/// The one value of header `name`, as text.
fn single<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, RequestError> {
    let name = HeaderName::from_static(name);
    let mut values = headers.get_all(&name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .map(str::trim)
            .map_err(|_| RequestError::Unauthenticated(format!("the {name} header is not ASCII"))),
        (None, _) => Err(RequestError::Unauthenticated(format!(
            "a signed request needs X-Eye-Client, X-Eye-Timestamp and X-Eye-Signature; {name} is missing"
        ))),
        (Some(_), Some(_)) => Err(RequestError::Unauthenticated(format!(
            "more than one {name} header"
        ))),
    }
}

fn signed_sender(
    headers: &HeaderMap,
    clients: &ClientRegistry,
    now: i64,
    window: u64,
) -> Result<Sender, RequestError> {
    let client_id = single(headers, HTTP_CLIENT)?;
    let timestamp = single(headers, HTTP_TIMESTAMP)?;
    let signatures = single(headers, HTTP_SIGNATURE)?;
    let client = clients
        .get(client_id)
        .ok_or_else(|| unauthenticated("unknown client in X-Eye-Client"))?;
    if client.hmac_secrets.is_empty() {
        return Err(unauthenticated(
            "the client in X-Eye-Client has no HMAC secret, so it cannot sign requests",
        ));
    }
    signature::check_timestamp(timestamp, now, window)
        .map_err(|e| RequestError::Unauthenticated(e.to_string()))?;
    let signatures = signature::parse_signatures(signatures)
        .map_err(|e| RequestError::Unauthenticated(e.to_string()))?;
    Ok(Sender {
        client: Arc::clone(client),
        via: Via::Signed {
            timestamp: timestamp.to_owned(),
            signatures,
        },
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const NOW: i64 = 1_700_000_000;
    const WINDOW: u64 = 300;

    fn clients() -> ClientRegistry {
        ClientRegistry::from_toml(
            "[[clients]]\nid = \"demo\"\n\
             write_keys = [{ key = \"k1\", allowed_origins = [\"https://shop.example\"] }, { key = \"k2\" }]\n\
             hmac_secrets = [{ secret = \"s_old\" }, { secret = \"s_new\" }]\n\
             [[clients]]\nid = \"nosecret\"\n",
            "test",
        )
        .expect("registry")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        headers
    }

    fn auth(pairs: &[(&'static str, &str)], query: Option<&str>) -> Result<Sender, RequestError> {
        authenticate(&headers(pairs), query, &clients(), NOW, WINDOW)
    }

    fn status(result: Result<Sender, RequestError>) -> u16 {
        match result {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn write_keys_by_header_or_query_name_their_client() {
        let sender = auth(&[("authorization", "Bearer k1")], None).expect("known");
        assert_eq!(sender.client.id, "demo");
        assert!(sender.by_write_key());
        let sender = auth(&[], Some("x=1&write_key=k2")).expect("known");
        assert_eq!(sender.client.id, "demo");
        assert!(sender.verify_body(b"anything").is_ok());
    }

    #[test]
    fn origins_must_be_allowed_by_the_key_when_present() {
        let good = [
            ("authorization", "Bearer k1"),
            ("origin", "https://shop.example"),
        ];
        assert_eq!(status(auth(&good, None)), 200);
        let wrong = [
            ("authorization", "Bearer k1"),
            ("origin", "https://evil.example"),
        ];
        assert_eq!(status(auth(&wrong, None)), 403);
        assert_eq!(
            status(auth(
                &[("origin", "https://shop.example")],
                Some("write_key=k2")
            )),
            403,
            "a key without origins is for server-side use only"
        );
    }

    #[test]
    fn missing_malformed_unknown_repeated_or_mixed_credentials_are_refused() {
        type Case<'a> = (Vec<(&'static str, &'a str)>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![], None),
            (vec![], Some("write_key=")),
            (vec![], Some("write_key=k1&write_key=k1")),
            (vec![], Some("write_key=nope")),
            (vec![("authorization", "k1")], None),
            (vec![("authorization", "Basic k1")], None),
            (vec![("authorization", "Bearer k9")], None),
            (
                vec![
                    ("authorization", "Bearer k1"),
                    ("authorization", "Bearer k1"),
                ],
                None,
            ),
            (vec![("authorization", "Bearer k1")], Some("write_key=k1")),
            (
                vec![("authorization", "Bearer k1"), ("x-eye-client", "demo")],
                None,
            ),
        ];
        for (pairs, query) in cases {
            let result = auth(&pairs, query);
            assert_eq!(status(result), 401, "{pairs:?} {query:?}");
        }
    }

    fn signed(client: &str, timestamp: &str, signature: &str) -> Result<Sender, RequestError> {
        auth(
            &[
                ("x-eye-client", client),
                ("x-eye-timestamp", timestamp),
                ("x-eye-signature", signature),
            ],
            None,
        )
    }

    #[test]
    fn signed_requests_check_client_window_and_body() {
        let body = br#"{"a":1}"#;
        let ts = NOW.to_string();
        for secret in ["s_old", "s_new"] {
            let sig = signature::sign(secret.as_bytes(), &ts, body);
            let sender = signed("demo", &ts, &sig).expect("valid headers");
            assert!(!sender.by_write_key());
            assert!(sender.verify_body(body).is_ok(), "{secret}");
            assert_eq!(
                sender
                    .verify_body(br#"{"a":2}"#)
                    .map_err(|e| e.status().as_u16()),
                Err(401)
            );
        }
        let sig = signature::sign(b"s_wrong", &ts, body);
        let sender = signed("demo", &ts, &sig).expect("headers are fine");
        assert!(sender.verify_body(body).is_err());

        let sig = signature::sign(b"s_old", &ts, body);
        assert_eq!(status(signed("nobody", &ts, &sig)), 401);
        assert_eq!(status(signed("nosecret", &ts, &sig)), 401);
        assert_eq!(status(signed("demo", &(NOW - 301).to_string(), &sig)), 401);
        assert_eq!(status(signed("demo", &(NOW + 301).to_string(), &sig)), 401);
        assert_eq!(status(signed("demo", "soon", &sig)), 401);
        assert_eq!(status(signed("demo", &ts, "v1=beef")), 401);
        assert_eq!(
            status(auth(
                &[("x-eye-client", "demo"), ("x-eye-timestamp", &ts)],
                None
            )),
            401,
            "incomplete"
        );
    }

    #[test]
    fn no_message_quotes_a_credential() {
        let sig = signature::sign(b"s_old", "1", b"");
        for result in [
            auth(&[("authorization", "Bearer k9_secret_looking")], None),
            auth(&[], Some("write_key=k9_secret_looking")),
            signed("demo", &NOW.to_string(), &sig),
        ] {
            if let Err(e) = result {
                let text = e.to_string();
                assert!(
                    !text.contains("k9_secret") && !text.contains(&sig[3..]),
                    "{text}"
                );
            }
        }
    }
}
