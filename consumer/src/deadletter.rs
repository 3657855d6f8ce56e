//! Parking a message on the dead-letter subject: the original body and headers
//! on `eye.deadletter.<client>.<token>` (stream EYE_DEADLETTER), with the
//! reason in `Eye-Reject-Reason`. The message is acked on EYE_EVENTS only
//! after JetStream confirmed the dead letter, so it never vanishes.

use async_nats::jetstream;
use async_nats::HeaderMap;
use bytes::Bytes;
use eye_contract::headers::{NATS_MSG_ID, REJECT_REASON};
use eye_contract::subject::{deadletter_subject_for, DEADLETTER_SUBJECT_PREFIX};

use crate::decode::Meta;

/// Longest reason kept in the header.
const MAX_REASON_BYTES: usize = 512;

/// Publishes the message to its dead-letter subject and waits for JetStream's ack.
pub async fn park(
    js: &jetstream::Context,
    subject: &str,
    payload: Bytes,
    headers: Option<&HeaderMap>,
    meta: &Meta,
    reason: &str,
) -> Result<(), String> {
    let target = deadletter_subject_for(subject)
        .unwrap_or_else(|| format!("{DEADLETTER_SUBJECT_PREFIX}.unknown"));
    let mut out = headers.cloned().unwrap_or_default();
    out.insert(REJECT_REASON, header_value(reason).as_str());
    // Parking the same message twice (a crash before the ack) stores it once.
    out.insert(
        NATS_MSG_ID,
        format!("deadletter:{}:{}", meta.stream, meta.sequence).as_str(),
    );
    let ack = js
        .publish_with_headers(target.clone(), out, payload)
        .await
        .map_err(|error| format!("cannot publish dead letter to {target}: {error}"))?;
    ack.await
        .map_err(|error| format!("JetStream did not store dead letter on {target}: {error}"))?;
    Ok(())
}

/// `reason` as a header value: one line of printable ASCII, at most
/// [`MAX_REASON_BYTES`] (anything else would break the NATS protocol line).
fn header_value(reason: &str) -> String {
    let mut value: String = reason
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    value.truncate(MAX_REASON_BYTES);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_one_printable_line() {
        assert_eq!(header_value("bad\r\nthing é"), "bad??thing ?");
        assert_eq!(header_value(&"x".repeat(1000)).len(), MAX_REASON_BYTES);
    }
}
