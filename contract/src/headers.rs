//! Header names shared by publishers and consumers (NATS) and by the HTTP
//! client and gateway.
//!
//! NATS header names are matched case-sensitively by the server (JetStream
//! deduplicates on exactly `Nats-Msg-Id`), so they are written in their
//! canonical case. HTTP header names are case-insensitive; they are written
//! in lower case because that is how HTTP/2 sends them and what
//! `http::HeaderName::from_static` requires (it panics on upper case).

/// NATS: the JetStream deduplication id, set to [`crate::dedup_id`].
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
/// NATS: the event's id (client-given or derived), so consumers need not re-derive it.
pub const EVENT_ID: &str = "Eye-Event-Id";
/// NATS: the authenticated client id of the event's sender.
pub const CLIENT_ID: &str = "Eye-Client-Id";
/// NATS: on a dead-lettered message, why it was parked.
pub const REJECT_REASON: &str = "Eye-Reject-Reason";

/// HTTP: the sending client of a signed request (`X-Eye-Client`).
pub const HTTP_CLIENT: &str = "x-eye-client";
/// HTTP: unix seconds at which a signed request was made (`X-Eye-Timestamp`).
pub const HTTP_TIMESTAMP: &str = "x-eye-timestamp";
/// HTTP: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` (`X-Eye-Signature`).
pub const HTTP_SIGNATURE: &str = "x-eye-signature";
/// The version prefix of the [`HTTP_SIGNATURE`] value.
pub const SIGNATURE_V1_PREFIX: &str = "v1=";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_names_are_lower_case_and_nats_names_canonical() {
        for h in [HTTP_CLIENT, HTTP_TIMESTAMP, HTTP_SIGNATURE] {
            assert_eq!(h, h.to_ascii_lowercase());
        }
        assert!(HTTP_SIGNATURE.eq_ignore_ascii_case("X-Eye-Signature"));
        assert_eq!(NATS_MSG_ID, "Nats-Msg-Id");
    }
}
