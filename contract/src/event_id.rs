//! Event ids: the id derived from an event's content, and the JetStream
//! deduplication id.
//!
//! The rule: a retried request must never create a second row. An event
//! without a client-given `event_id` therefore gets an id that is a pure
//! function of its sender and its *normalized* content — the same event sent
//! twice, with keys in another order or the time spelled another way, gets
//! the same id, and JetStream's duplicate window (`Nats-Msg-Id`) and the
//! `events` table's dedup both drop the copy. Any change of content or
//! sender gives a different id.
//!
//! # Canonical encoding (version 1)
//!
//! SHA-256 over: the domain tag `eye-event-id/v1` and a NUL byte, then the
//! client, the 16 session-id bytes, the category, the name, the timestamp as
//! big-endian i64 microseconds, then `data` as a value. Strings are a
//! big-endian u64 byte length followed by their UTF-8 bytes. Values are a
//! one-byte tag and a body: `n` null, `f`/`t` booleans, `#` a number as its
//! serde_json text (a length-prefixed string; `1` and `1.0` differ, `1e0` and
//! `1.0` do not), `s` a string, `a` an item count and the items, `o` an entry
//! count and the entries sorted by key bytes, each a key string then a value.
//! Every part is either fixed-size or length-prefixed, so two different
//! events cannot produce the same byte stream. The first 16 bytes of the
//! hash, with the version and variant bits of a UUID v8 set, are printed as a
//! lowercase hyphenated UUID.
//!
//! Changing this encoding changes every derived id (breaking deduplication
//! of retries across a deploy), so it is versioned by the domain tag.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::timestamp::Timestamp;

const DOMAIN_TAG: &[u8] = b"eye-event-id/v1\0";

/// The id of an event that came without `event_id`: a UUID v8 string
/// (lowercase, hyphenated) derived from the client and the normalized content.
///
/// See the module documentation for the exact encoding.
pub fn derive_event_id(
    client: &str,
    session_id: &Uuid,
    category: &str,
    name: &str,
    data: &Map<String, Value>,
    timestamp: Timestamp,
) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN_TAG);
    put_str(&mut h, client);
    h.update(session_id.as_bytes());
    put_str(&mut h, category);
    put_str(&mut h, name);
    h.update(timestamp.as_micros().to_be_bytes());
    put_object(&mut h, data);
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes).to_string()
}

/// The JetStream `Nats-Msg-Id` of an event: `"<client>:<event_id>"`.
///
/// Scoped by client because `event_id` may be chosen by the client: without
/// the scope, one client could suppress another client's events (inside the
/// duplicate window) by reusing their ids. `:` cannot occur in a client id,
/// so the split is unambiguous.
pub fn dedup_id(client: &str, event_id: &str) -> String {
    format!("{client}:{event_id}")
}

fn put_len(h: &mut Sha256, len: usize) {
    // usize always fits in u64 on supported targets; saturate rather than panic.
    h.update(u64::try_from(len).unwrap_or(u64::MAX).to_be_bytes());
}

fn put_str(h: &mut Sha256, s: &str) {
    put_len(h, s.len());
    h.update(s.as_bytes());
}

/// Work items of the iterative encoder: a value to encode, or an object key.
enum Item<'a> {
    Value(&'a Value),
    Key(&'a str),
}

fn put_object(h: &mut Sha256, map: &Map<String, Value>) {
    let mut stack = Vec::new();
    push_object(h, map, &mut stack);
    drain(h, stack);
}

/// Writes an object's header and schedules its entries in key order.
///
/// Entries are sorted here rather than trusting the map's iteration order:
/// serde_json's `preserve_order` feature (which any crate in the build can
/// turn on) would make that order the order of the input text.
fn push_object<'a>(h: &mut Sha256, map: &'a Map<String, Value>, stack: &mut Vec<Item<'a>>) {
    h.update(b"o");
    put_len(h, map.len());
    let mut entries: Vec<(&'a String, &'a Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    // The stack pops last-in first, so push in reverse.
    for (k, v) in entries.into_iter().rev() {
        stack.push(Item::Value(v));
        stack.push(Item::Key(k));
    }
}

/// Encodes values with an explicit stack, so even data nested far beyond the
/// validator's depth limit cannot overflow the call stack.
fn drain<'a>(h: &mut Sha256, mut stack: Vec<Item<'a>>) {
    while let Some(item) = stack.pop() {
        match item {
            Item::Key(k) => put_str(h, k),
            Item::Value(v) => match v {
                Value::Null => h.update(b"n"),
                Value::Bool(false) => h.update(b"f"),
                Value::Bool(true) => h.update(b"t"),
                Value::Number(n) => {
                    h.update(b"#");
                    put_str(h, &n.to_string());
                }
                Value::String(s) => {
                    h.update(b"s");
                    put_str(h, s);
                }
                Value::Array(items) => {
                    h.update(b"a");
                    put_len(h, items.len());
                    stack.extend(items.iter().rev().map(Item::Value));
                }
                Value::Object(map) => push_object(h, map, &mut stack),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    struct Content {
        client: &'static str,
        session: Uuid,
        category: &'static str,
        name: &'static str,
        data: Map<String, Value>,
        ts: Timestamp,
    }

    fn base() -> Content {
        Content {
            client: "demo",
            session: Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423").expect("uuid"),
            category: "party",
            name: "AppName",
            data: obj(json!({"host": "www.party.com", "path": "/", "n": [1, {"b": 2, "a": null}]})),
            ts: Timestamp::parse("2021-09-26 09:15:27.24386").expect("ts"),
        }
    }

    fn id(c: &Content) -> String {
        derive_event_id(c.client, &c.session, c.category, c.name, &c.data, c.ts)
    }

    #[test]
    fn is_a_lowercase_uuid_v8() {
        let s = id(&base());
        let u = Uuid::parse_str(&s).expect("a uuid");
        assert_eq!(u.get_version_num(), 8);
        assert_eq!(s, s.to_ascii_lowercase());
        assert_eq!(s.len(), 36);
    }

    #[test]
    fn is_stable_across_key_order_and_timestamp_spelling() {
        let a = base();
        let mut b = base();
        // Build the same data with keys inserted in another order, nested too.
        b.data = Map::new();
        b.data.insert("n".into(), json!([1, {"a": null, "b": 2}]));
        b.data.insert("path".into(), json!("/"));
        b.data.insert("host".into(), json!("www.party.com"));
        b.ts = Timestamp::parse("2021-09-26T09:15:27.243860Z").expect("ts");
        assert_eq!(id(&a), id(&b));
        let mut c = base();
        c.ts = Timestamp::parse("2021-09-26T11:15:27.2438609+02:00").expect("ts");
        assert_eq!(id(&a), id(&c));
        // A fixed value: ids must not change between releases, or retries
        // that straddle a deploy would no longer deduplicate.
        assert_eq!(id(&a), "b720eb67-867a-8348-b087-59824a162261");
    }

    #[test]
    fn any_change_gives_another_id() {
        let reference = id(&base());
        let mut variants: Vec<Content> = Vec::new();
        let mut c = base();
        c.client = "other";
        variants.push(c);
        let mut c = base();
        c.session = Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25424").expect("uuid");
        variants.push(c);
        let mut c = base();
        c.category = "page interaction";
        variants.push(c);
        let mut c = base();
        c.name = "AppName2";
        variants.push(c);
        let mut c = base();
        c.ts = Timestamp::from_micros(c.ts.as_micros() + 1);
        variants.push(c);
        let mut c = base();
        c.data.insert("path".into(), json!("/x"));
        variants.push(c);
        let mut c = base();
        c.data.insert("extra".into(), Value::Null);
        variants.push(c);
        let mut c = base();
        c.data.insert("n".into(), json!([1.0, {"b": 2, "a": null}]));
        variants.push(c);
        let mut c = base();
        c.data.insert("n".into(), json!(["1", {"b": 2, "a": null}]));
        variants.push(c);
        let mut ids = std::collections::HashSet::new();
        ids.insert(reference);
        for v in &variants {
            assert!(ids.insert(id(v)), "collision for {:?}/{}", v.client, v.name);
        }
    }

    #[test]
    fn length_prefixes_keep_field_boundaries() {
        // Moving characters between adjacent fields must change the id.
        let mut a = base();
        a.category = "ab";
        a.name = "c";
        let mut b = base();
        b.category = "a";
        b.name = "bc";
        assert_ne!(id(&a), id(&b));
        // Nesting is part of the encoding: [[1],2] vs [[1,2]].
        let mut a = base();
        a.data = obj(json!({"x": [[1], 2]}));
        let mut b = base();
        b.data = obj(json!({"x": [[1, 2]]}));
        assert_ne!(id(&a), id(&b));
    }

    #[test]
    fn deep_data_does_not_overflow_the_stack() {
        let mut v = json!(0);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        let mut c = base();
        c.data = obj(json!({}));
        c.data.insert("deep".into(), v);
        let _ = id(&c);
        // Dropping a deeply nested Value recurses in serde_json; unwind it by hand.
        let mut cur = c.data.remove("deep");
        while let Some(Value::Array(mut items)) = cur {
            cur = items.pop();
        }
    }

    #[test]
    fn dedup_id_is_scoped_by_client() {
        assert_eq!(dedup_id("demo", "abc"), "demo:abc");
        assert_ne!(dedup_id("a", "x"), dedup_id("b", "x"));
    }
}
