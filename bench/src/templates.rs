//! Request bodies made cheaply: a few thousand bodies are generated before
//! the clock starts, and each send copies one and moves its event timestamps
//! a few microseconds, so every event sent is distinct (its derived event id
//! differs, so JetStream's duplicate window never drops it) while the load
//! generator spends microseconds, not a JSON serialization, per request: on
//! two shared cores every cycle it spends is taken from the pipeline.

use bytes::Bytes;
use eye_contract::Timestamp;

use crate::traffic::{wire_timestamp, Traffic};

/// Length of a wire timestamp, `2021-09-26 09:15:27.243860`.
const STAMP_LEN: usize = 26;
const STAMP_KEY: &[u8] = b"\"timestamp\":\"";

/// One body and where its timestamps are.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    /// Offset of each parseable timestamp and its instant.
    stamps: Vec<(usize, i64)>,
    valid: usize,
}

/// Pre-generated bodies.
#[derive(Debug, Clone)]
pub struct Templates {
    bodies: Vec<Template>,
}

impl Templates {
    /// `count` bodies of `events` events each: a JSON array when `events` > 1,
    /// a single object when it is 1.
    pub fn new(traffic: &mut Traffic, count: usize, events: usize, at: Timestamp) -> Templates {
        let bodies = (0..count.max(1))
            .map(|_| {
                let (bytes, valid) = if events <= 1 {
                    let (event, ok) = traffic.wire_event(at);
                    (
                        serde_json::to_vec(&event).unwrap_or_default(),
                        usize::from(ok),
                    )
                } else {
                    traffic.batch_body(events, at)
                };
                let stamps = find_stamps(&bytes);
                Template {
                    bytes,
                    stamps,
                    valid,
                }
            })
            .collect();
        Templates { bodies }
    }

    /// Body number `n` (any `n`): template `n mod count` with its timestamps
    /// moved `n div count` microseconds earlier; and how many of its events
    /// are valid.
    pub fn render(&self, n: u64) -> (Bytes, usize) {
        let count = self.bodies.len() as u64;
        let template = &self.bodies[usize::try_from(n % count).unwrap_or(0)];
        let shift = i64::try_from(n / count).unwrap_or(0);
        let mut bytes = template.bytes.clone();
        if shift > 0 {
            for &(offset, micros) in &template.stamps {
                let stamp = wire_timestamp(Timestamp::from_micros(micros - shift));
                if stamp.len() == STAMP_LEN {
                    bytes[offset..offset + STAMP_LEN].copy_from_slice(stamp.as_bytes());
                }
            }
        }
        (Bytes::from(bytes), template.valid)
    }
}

fn find_stamps(bytes: &[u8]) -> Vec<(usize, i64)> {
    let mut stamps = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], STAMP_KEY) {
        let offset = from + at + STAMP_KEY.len();
        if let Some(text) = bytes
            .get(offset..offset + STAMP_LEN)
            .and_then(|b| std::str::from_utf8(b).ok())
        {
            if bytes.get(offset + STAMP_LEN) == Some(&b'"') {
                if let Ok(ts) = Timestamp::parse(text) {
                    stamps.push((offset, ts.as_micros()));
                }
            }
        }
        from = offset;
    }
    stamps
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn renders_distinct_events_from_few_templates() {
        let mut traffic = Traffic::new(3, 20);
        let templates = Templates::new(&mut traffic, 4, 10, Timestamp::now());
        let mut seen = std::collections::HashSet::new();
        for n in 0..40 {
            let (body, valid) = templates.render(n);
            assert!(valid <= 10);
            let events: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
            assert_eq!(events.len(), 10);
            for event in events {
                // An invalid event may repeat; a valid one never does.
                if event["timestamp"]
                    .as_str()
                    .is_some_and(|t| Timestamp::parse(t).is_ok())
                {
                    assert!(seen.insert(event.to_string()), "repeated: {event}");
                }
            }
        }
    }

    #[test]
    fn single_bodies_are_objects() {
        let mut traffic = Traffic::new(4, 20);
        let templates = Templates::new(&mut traffic, 3, 1, Timestamp::now());
        let (body, _) = templates.render(7);
        let event: Value = serde_json::from_slice(&body).expect("JSON");
        assert!(event.is_object());
    }
}
