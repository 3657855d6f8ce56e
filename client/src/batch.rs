//! Batches: events serialized straight into one NDJSON buffer, with where
//! each line is and who waits for its outcome.
//!
//! The buffer is the request body as is (`application/x-ndjson`, one event
//! per line), so a first attempt sends it without a copy; a retry of some of
//! its events copies just their lines. For the NATS transport each line is a
//! message payload (a zero-copy slice of the same buffer).

use std::ops::Range;

use bytes::Bytes;

use crate::event::Event;
use crate::receipt::{Counters, Delivery, Reply};

/// Where an event of a NATS batch goes, and its id.
#[derive(Debug)]
pub(crate) struct NatsMeta {
    pub(crate) subject: String,
    pub(crate) event_id: String,
}

/// A batch being filled.
#[derive(Debug, Default)]
pub(crate) struct OpenBatch {
    buf: Vec<u8>,
    lines: Vec<Range<usize>>,
    replies: Vec<Option<Reply>>,
    nats: Vec<NatsMeta>,
}

/// A batch ready to send.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The NDJSON body: every event, each line ended by `\n`.
    pub(crate) body: Bytes,
    /// Each event's line in `body`, without its `\n`.
    pub(crate) lines: Vec<Range<usize>>,
    /// Each event's reply, taken when its outcome is known.
    replies: Vec<Option<Reply>>,
    /// NATS transport: each event's subject and id (empty for HTTP).
    pub(crate) nats: Vec<NatsMeta>,
}

impl OpenBatch {
    /// Events in the batch.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the batch holds no event.
    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Serialized bytes in the batch.
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Appends `event` as one line. On a serialization error (impossible for
    /// JSON maps, but not a reason to panic) nothing is appended and the
    /// reply is handed back.
    pub(crate) fn push(
        &mut self,
        event: &Event,
        reply: Option<Reply>,
        nats: Option<NatsMeta>,
    ) -> Result<(), (serde_json::Error, Option<Reply>)> {
        let start = self.buf.len();
        if let Err(error) = serde_json::to_writer(&mut self.buf, event) {
            self.buf.truncate(start);
            return Err((error, reply));
        }
        let end = self.buf.len();
        self.buf.push(b'\n');
        self.lines.push(start..end);
        self.replies.push(reply);
        if let Some(meta) = nats {
            self.nats.push(meta);
        }
        Ok(())
    }

    /// Moves the last event into a new batch (used when it pushed this one
    /// over its byte limit).
    pub(crate) fn split_last(&mut self) -> OpenBatch {
        let mut tail = OpenBatch::default();
        let (Some(line), Some(reply)) = (self.lines.pop(), self.replies.pop()) else {
            return tail;
        };
        let bytes = self.buf.split_off(line.start);
        tail.lines.push(0..line.end - line.start);
        tail.buf = bytes;
        tail.replies.push(reply);
        if let Some(meta) = self.nats.pop() {
            tail.nats.push(meta);
        }
        tail
    }

    /// The batch, ready to send; this one is left empty.
    pub(crate) fn seal(&mut self) -> Batch {
        let open = std::mem::take(self);
        Batch {
            body: Bytes::from(open.buf),
            lines: open.lines,
            replies: open.replies,
            nats: open.nats,
        }
    }
}

impl Batch {
    /// Events in the batch.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// One event's line, without its `\n`.
    pub(crate) fn line(&self, i: usize) -> Bytes {
        match self.lines.get(i) {
            Some(r) => self.body.slice(r.clone()),
            None => Bytes::new(),
        }
    }

    /// The NDJSON body of the events at `indices` (all of them: no copy).
    pub(crate) fn body_of(&self, indices: &[usize]) -> Bytes {
        if indices.len() == self.len() {
            return self.body.clone();
        }
        let size = indices
            .iter()
            .filter_map(|&i| self.lines.get(i))
            .map(|r| r.len() + 1)
            .sum();
        let mut out = Vec::with_capacity(size);
        for &i in indices {
            if let Some(r) = self.lines.get(i) {
                out.extend_from_slice(&self.body[r.clone()]);
                out.push(b'\n');
            }
        }
        Bytes::from(out)
    }

    /// Reports event `i`'s outcome (once; later calls do nothing) and counts it.
    pub(crate) fn resolve(&mut self, i: usize, delivery: Delivery, counters: &Counters) {
        if let Some(slot) = self.replies.get_mut(i) {
            counters.count(&delivery);
            if let Some(reply) = slot.take() {
                reply.resolve(delivery);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_contract::Timestamp;

    fn event(name: &str) -> Event {
        Event::new(uuid::Uuid::nil(), "party", name, Timestamp::from_micros(0))
    }

    #[test]
    fn lines_are_ndjson_and_subsets_copy_only_their_lines() {
        let mut open = OpenBatch::default();
        for name in ["a", "b", "c"] {
            open.push(&event(name), None, None).expect("push");
        }
        assert_eq!(open.len(), 3);
        let batch = open.seal();
        assert!(open.is_empty() && open.bytes() == 0);
        let text = std::str::from_utf8(&batch.body).expect("utf8");
        assert_eq!(text.lines().count(), 3);
        for (i, line) in text.lines().enumerate() {
            assert_eq!(&batch.line(i)[..], line.as_bytes());
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            assert_eq!(v["name"], ["a", "b", "c"][i]);
        }
        let subset = batch.body_of(&[0, 2]);
        let lines: Vec<&str> = std::str::from_utf8(&subset)
            .expect("utf8")
            .lines()
            .collect();
        assert_eq!(
            lines,
            [
                text.lines().next().expect("a"),
                text.lines().nth(2).expect("c")
            ]
        );
        assert_eq!(batch.body_of(&[0, 1, 2]), batch.body);
    }

    #[test]
    fn split_last_moves_the_last_event() {
        let mut open = OpenBatch::default();
        open.push(&event("a"), None, None).expect("push");
        open.push(&event("b"), None, None).expect("push");
        let mut tail = open.split_last();
        assert_eq!((open.len(), tail.len()), (1, 1));
        let head = open.seal();
        let tail = tail.seal();
        assert!(
            std::str::from_utf8(&head.body)
                .expect("utf8")
                .contains("\"a\"")
        );
        assert!(
            std::str::from_utf8(&tail.line(0))
                .expect("utf8")
                .contains("\"b\"")
        );
        assert!(tail.body.ends_with(b"\n"));
    }
}
