//! HMAC request signing (DESIGN.md, "Security").
//!
//! A signed request carries `X-Eye-Client: <client>`, `X-Eye-Timestamp: <unix
//! seconds>` and `X-Eye-Signature: v1=<hex HMAC-SHA256(secret,
//! "<timestamp>.<raw body>")>`. The body is the one on the wire: after gzip
//! when the request is compressed. Each attempt of a retried request is
//! signed afresh, so a retry late in a long outage is still inside the
//! gateway's replay window.

use eye_contract::headers::SIGNATURE_V1_PREFIX;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `X-Eye-Signature` value for `body` sent at `timestamp` (unix seconds).
///
/// ```
/// let signature = eye_client::sign::signature(b"eye_demo_secret", 1_700_000_000, b"{}");
/// assert!(signature.starts_with("v1=") && signature.len() == 3 + 64);
/// ```
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this constructor cannot fail; the
    // fallback only keeps the code free of panics.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(SIGNATURE_V1_PREFIX.len() + 64);
    out.push_str(SIGNATURE_V1_PREFIX);
    out.push_str(&hex::encode(tag));
    out
}

/// The current unix time in whole seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed independently with
    // `printf '1700000000.{"a":1}\n' | openssl dgst -sha256 -hmac eye_demo_secret`.
    #[test]
    fn matches_openssl() {
        assert_eq!(
            signature(b"eye_demo_secret", 1_700_000_000, b"{\"a\":1}\n"),
            "v1=89f1805689c9428ba583b87c80cdc0f1a237de6c89595c8c94340dec57707dc9"
        );
        // Binary (gzip-like) bodies are signed as bytes.
        assert_eq!(
            signature(
                b"eye_demo_secret",
                1_700_000_000,
                &[0x1f, 0x8b, 0x08, 0x00, 0xff]
            ),
            "v1=f1d18dd3d74e9049a8d019aa238b0d1a5e6151ba6a66e558541c38f413d3b0fa"
        );
    }

    #[test]
    fn any_change_changes_the_signature() {
        let base = signature(b"s", 1, b"body");
        assert_ne!(base, signature(b"t", 1, b"body"));
        assert_ne!(base, signature(b"s", 2, b"body"));
        assert_ne!(base, signature(b"s", 1, b"bodz"));
    }
}
