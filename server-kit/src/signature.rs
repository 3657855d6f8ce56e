//! Signed requests (DESIGN.md, "Security"): the recipe and its checks.
//!
//! A server-side sender sends
//! - `X-Eye-Client: <client id>`,
//! - `X-Eye-Timestamp: <unix seconds>` (decimal, the time of sending),
//! - `X-Eye-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`,
//!
//! where the raw body is the bytes sent, still gzip-compressed when
//! `Content-Encoding: gzip`, and the hex is lower or upper case. The header
//! may list several comma-separated values (`v1=<hex>,v1=<hex>`, at most
//! [`MAX_SIGNATURES`]); the request is authentic when one of them matches one
//! of the client's secrets. Values of other versions (`v0=…`) are ignored, so
//! a future version can be sent next to `v1`.
//!
//! Digests are compared in constant time, and every presented value is
//! compared with every secret, so the time taken does not tell which matched.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::clients::Secret;

/// Most `v1=` values one `X-Eye-Signature` header may carry.
pub const MAX_SIGNATURES: usize = 4;
/// The prefix of a version-1 signature.
pub const V1_PREFIX: &str = "v1=";
/// Longest accepted `X-Eye-Timestamp` (unix seconds need 10 digits until 2286).
const MAX_TIMESTAMP_DIGITS: usize = 12;

/// An HMAC-SHA256 digest.
pub type Digest = [u8; 32];

/// Why a signature header cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `v1=` value at all.
    #[error("X-Eye-Signature holds no v1=<hex> value")]
    NoV1,
    /// A `v1=` value that is not 64 hex digits.
    #[error("an X-Eye-Signature v1 value is not 64 hex digits")]
    BadHex,
    /// More values than [`MAX_SIGNATURES`].
    #[error("X-Eye-Signature holds more than {MAX_SIGNATURES} values")]
    TooMany,
}

/// Why a timestamp header cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Not decimal unix seconds.
    #[error("X-Eye-Timestamp must be unix seconds (decimal digits)")]
    Malformed,
    /// Further from the server's clock than the replay window.
    #[error("X-Eye-Timestamp is {off_by} s {direction} the server's clock, outside the {window} s replay window")]
    OutsideWindow {
        /// How far off, in seconds.
        off_by: u64,
        /// `"behind"` (too old) or `"ahead of"` (in the future).
        direction: &'static str,
        /// The window, in seconds.
        window: u64,
    },
}

/// The digest of `"<timestamp>.<body>"` under `secret`.
pub fn digest(secret: &[u8], timestamp: &str, body: &[u8]) -> Digest {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC accepts keys of every length")
}

/// The `X-Eye-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "{V1_PREFIX}{}",
        hex::encode(digest(secret, timestamp, body))
    )
}

/// The `v1` digests of an `X-Eye-Signature` value.
pub fn parse_signatures(header: &str) -> Result<Vec<Digest>, SignatureError> {
    let values: Vec<&str> = header
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if values.len() > MAX_SIGNATURES {
        return Err(SignatureError::TooMany);
    }
    let mut digests = Vec::new();
    for value in values {
        let Some(hex_digits) = value.strip_prefix(V1_PREFIX) else {
            continue;
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut digest).map_err(|_| SignatureError::BadHex)?;
        digests.push(digest);
    }
    if digests.is_empty() {
        return Err(SignatureError::NoV1);
    }
    Ok(digests)
}

/// Whether one of `presented` is the digest of the body under one of `secrets`.
pub fn verify<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    timestamp: &str,
    body: &[u8],
    presented: &[Digest],
) -> bool {
    let mut matched = Choice::from(0);
    for secret in secrets {
        let expected = digest(secret.expose(), timestamp, body);
        for candidate in presented {
            matched |= expected.ct_eq(candidate);
        }
    }
    matched.into()
}

/// Checks `X-Eye-Timestamp` against the server's clock `now` (unix seconds):
/// at most `window` seconds off, in either direction.
pub fn check_timestamp(value: &str, now: i64, window: u64) -> Result<i64, TimestampError> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > MAX_TIMESTAMP_DIGITS
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(TimestampError::Malformed);
    }
    let sent: i64 = value.parse().map_err(|_| TimestampError::Malformed)?;
    let off = now.saturating_sub(sent);
    if off.unsigned_abs() > window {
        return Err(TimestampError::OutsideWindow {
            off_by: off.unsigned_abs(),
            direction: if off > 0 { "behind" } else { "ahead of" },
            window,
        });
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently with
        // `printf %s '1700000000.{"a":1}' | openssl dgst -sha256 -hmac eye_demo_secret`.
        assert_eq!(
            sign(b"eye_demo_secret", "1700000000", br#"{"a":1}"#),
            "v1=615d2547bc875fa0a29679ffb194a0319c66d721f5a23aa5695417f348071784"
        );
    }

    #[test]
    fn signatures_verify_with_any_listed_secret_and_nothing_else() {
        let old = Secret::new("old_secret");
        let new = Secret::new("new_secret");
        let body = br#"{"a":1}"#;
        let header = sign(b"old_secret", "1700000000", body);
        let presented = parse_signatures(&header).expect("parses");
        assert!(verify([&old, &new], "1700000000", body, &presented));
        assert!(verify([&old], "1700000000", body, &presented));
        assert!(!verify([&new], "1700000000", body, &presented));
        assert!(
            !verify([&old], "1700000001", body, &presented),
            "timestamp is signed"
        );
        assert!(
            !verify([&old], "1700000000", br#"{"a":2}"#, &presented),
            "body is signed"
        );
        assert!(!verify([], "1700000000", body, &presented));
        let both = format!(
            "v0=abc, {}, {}",
            sign(b"x", "1", b""),
            header.to_uppercase().replace("V1=", "v1=")
        );
        let presented = parse_signatures(&both).expect("parses");
        assert_eq!(presented.len(), 2);
        assert!(verify([&old], "1700000000", body, &presented));
    }

    #[test]
    fn malformed_signature_headers_are_named() {
        assert_eq!(parse_signatures(""), Err(SignatureError::NoV1));
        assert_eq!(parse_signatures("v0=00"), Err(SignatureError::NoV1));
        assert_eq!(parse_signatures("v1=zz"), Err(SignatureError::BadHex));
        assert_eq!(parse_signatures("v1=00"), Err(SignatureError::BadHex));
        let many = vec![sign(b"k", "1", b""); 5].join(",");
        assert_eq!(parse_signatures(&many), Err(SignatureError::TooMany));
    }

    #[test]
    fn timestamps_must_be_inside_the_window_both_ways() {
        assert_eq!(check_timestamp("1000", 1000, 300), Ok(1000));
        assert_eq!(check_timestamp(" 1300 ", 1000, 300), Ok(1300));
        assert_eq!(check_timestamp("700", 1000, 300), Ok(700));
        assert!(matches!(
            check_timestamp("699", 1000, 300),
            Err(TimestampError::OutsideWindow {
                off_by: 301,
                direction: "behind",
                ..
            })
        ));
        assert!(matches!(
            check_timestamp("1301", 1000, 300),
            Err(TimestampError::OutsideWindow {
                off_by: 301,
                direction: "ahead of",
                ..
            })
        ));
        for bad in ["", "-5", "+5", "1.5", "1e3", "9999999999999", "abc"] {
            assert_eq!(
                check_timestamp(bad, 1000, 300),
                Err(TimestampError::Malformed),
                "{bad}"
            );
        }
    }
}
