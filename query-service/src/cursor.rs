//! Keyset pagination cursors.
//!
//! A page ends at a row; the next page starts strictly after that row's
//! position in the order of the answer (e.g. `(timestamp_us, event_id,
//! client_id)` for events). Rows inserted meanwhile before that position do
//! not shift the next page (no repeats), rows after it appear on later pages
//! (no gaps), unlike an `OFFSET`.
//!
//! The cursor is opaque to clients: base64url of a small JSON array holding
//! the route kind, a fingerprint of the filters (and of the token's scope),
//! and the position. A cursor given with other filters, or to another route,
//! is refused with 400 rather than silently mixing two result sets. A forged
//! cursor can only move the start of a page: its values are typed and bound
//! like every other parameter.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

const VERSION: u8 = 1;

/// Where a page ended: a time in microseconds and up to two tie-breakers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The order's time (`timestamp_us`, `first_us`, `received_us`).
    pub time_us: i64,
    /// The first tie-breaker (event id, session id, reject id).
    pub id: String,
    /// The second tie-breaker (the client id of an event; empty otherwise).
    pub client: String,
}

/// What a cursor is bound to: the route kind and a description of the filters.
#[derive(Debug, Clone)]
pub struct Binding {
    fingerprint: String,
}

impl Binding {
    /// Binds cursors to `kind` and the canonical text of the filters and scope
    /// (any `Debug` form that changes when a filter changes will do).
    pub fn new(kind: &str, filters: &str) -> Binding {
        let digest = Sha256::new()
            .chain_update(kind.as_bytes())
            .chain_update([0])
            .chain_update(filters.as_bytes())
            .finalize();
        Binding {
            fingerprint: hex::encode(&digest[..8]),
        }
    }

    /// The cursor for a page that ended at `position`.
    pub fn encode(&self, position: &Position) -> String {
        let json = serde_json::to_vec(&(VERSION, &self.fingerprint, position)).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// The position of `cursor`, if it was made by [`Binding::encode`] for the same binding.
    pub fn decode(&self, cursor: &str) -> Result<Position, ApiError> {
        let bad = || ApiError::param("cursor", "is not a cursor given by this API");
        let json = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let (version, fingerprint, position): (u8, String, Position) =
            serde_json::from_slice(&json).map_err(|_| bad())?;
        if version != VERSION {
            return Err(bad());
        }
        if fingerprint != self.fingerprint {
            return Err(ApiError::param(
                "cursor",
                "belongs to another query: repeat the filters of the request that gave it",
            ));
        }
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let a = Binding::new("events", "category=party");
        let position = Position {
            time_us: 1_632_647_727_243_860,
            id: "e'1\"?".to_owned(),
            client: "demo".to_owned(),
        };
        let cursor = a.encode(&position);
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(a.decode(&cursor).expect("same binding"), position);
        let b = Binding::new("events", "category=other");
        assert!(matches!(
            b.decode(&cursor),
            Err(ApiError::BadParameter { .. })
        ));
        for garbage in ["x", "!!!", "W10", &URL_SAFE_NO_PAD.encode(b"[2,\"\",{}]")] {
            assert!(a.decode(garbage).is_err(), "{garbage}");
        }
    }
}
