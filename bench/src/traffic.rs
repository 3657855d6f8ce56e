//! Realistic traffic: many sessions, every category of `schemas/` with each of
//! its event names, `data` of realistic size (about 200–500 bytes), and 1% of
//! events invalid in the ways clients get events wrong.
//!
//! The mix (page interaction 60%: pageviews 45, CTA clicks 15; party 25%;
//! form submits 15%) is a typical web-analytics shape: mostly page views, some
//! clicks, few form posts. Every valid event passes the category's schema.

use eye_contract::{derive_event_id, Event, Timestamp};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::rng::Rng;

/// Invalid events per thousand (1%).
pub const INVALID_PER_MILLE: u64 = 10;

const HOSTS: [&str; 8] = [
    "www.party.com",
    "shop.example.com",
    "app.example.org",
    "docs.example.net",
    "blog.example.com",
    "checkout.example.com",
    "m.example.com",
    "www.example.io",
];
const WORDS: [&str; 16] = [
    "pricing",
    "products",
    "shoes",
    "running",
    "summer",
    "sale",
    "account",
    "signup",
    "billing",
    "search",
    "guides",
    "getting-started",
    "enterprise",
    "careers",
    "contact",
    "partners",
];
const ELEMENTS: [&str; 6] = [
    "chat bubble",
    "buy now button",
    "start free trial",
    "newsletter banner",
    "pricing toggle",
    "hero video",
];
const APPS: [&str; 5] = ["PartyApp", "Checkout", "Storefront", "Landing", "Dashboard"];
const PLANS: [&str; 3] = ["starter", "team", "enterprise"];

/// One valid event before it is written out.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The session.
    pub session_id: Uuid,
    /// The category.
    pub category: &'static str,
    /// The name (event type or application).
    pub name: String,
    /// The payload.
    pub data: Map<String, Value>,
    /// When it occurred.
    pub timestamp: Timestamp,
}

impl Sample {
    /// The event as a client sends it (wire format v1, `YYYY-MM-DD
    /// HH:MM:SS.ffffff` UTC timestamp, no `event_id`).
    pub fn to_wire(&self) -> Value {
        json!({
            "session_id": self.session_id.to_string(),
            "category": self.category,
            "name": self.name,
            "data": self.data,
            "timestamp": wire_timestamp(self.timestamp),
        })
    }

    /// The event as the gateway publishes it for `client`: normalized, with
    /// the content-derived event id.
    pub fn to_event(&self, client: &str) -> Event {
        Event {
            event_id: derive_event_id(
                client,
                &self.session_id,
                self.category,
                &self.name,
                &self.data,
                self.timestamp,
            ),
            session_id: self.session_id,
            category: self.category.to_owned(),
            name: self.name.clone(),
            data: self.data.clone(),
            timestamp: self.timestamp,
        }
    }
}

/// `2021-09-26 09:15:27.243860`: the wire's zone-less UTC form.
pub fn wire_timestamp(ts: Timestamp) -> String {
    let mut text = ts.to_rfc3339();
    text.pop(); // the `Z`
    text.replacen('T', " ", 1)
}

/// Generates events; deterministic for a seed.
#[derive(Debug, Clone)]
pub struct Traffic {
    rng: Rng,
    sessions: Vec<Uuid>,
}

impl Traffic {
    /// Traffic over `sessions` concurrent sessions (at least one).
    pub fn new(seed: u64, sessions: usize) -> Traffic {
        let mut rng = Rng::new(seed);
        let sessions = (0..sessions.max(1))
            .map(|_| random_uuid(&mut rng))
            .collect();
        Traffic { rng, sessions }
    }

    /// A valid event of one of the pooled sessions, occurring shortly before `at`.
    pub fn sample(&mut self, at: Timestamp) -> Sample {
        let session_id = self.sessions[self.rng.index(self.sessions.len())];
        self.sample_for(session_id, at)
    }

    /// A valid event of a brand-new session (for tracing one event end to end).
    pub fn sample_new_session(&mut self, at: Timestamp) -> Sample {
        let session_id = random_uuid(&mut self.rng);
        self.sample_for(session_id, at)
    }

    fn sample_for(&mut self, session_id: Uuid, at: Timestamp) -> Sample {
        // Up to two seconds before `at`: events are sent soon after they happen.
        let back = i64::try_from(self.rng.below(2_000_000)).unwrap_or(0);
        let timestamp = Timestamp::from_micros(at.as_micros() - back);
        let host = HOSTS[self.rng.index(HOSTS.len())];
        let path = self.path();
        let roll = self.rng.below(100);
        let (category, name, data) = if roll < 45 {
            ("page interaction", "pageview".to_owned(), page(host, &path))
        } else if roll < 60 {
            let mut data = page(host, &path);
            let element = ELEMENTS[self.rng.index(ELEMENTS.len())];
            data.insert("element".into(), Value::from(element));
            ("page interaction", "cta click".to_owned(), data)
        } else if roll < 85 {
            let app = APPS[self.rng.index(APPS.len())];
            ("party", app.to_owned(), page(host, &path))
        } else {
            let mut data = page(host, &path);
            data.insert("form".into(), Value::Object(self.form()));
            ("form interaction", "submit".to_owned(), data)
        };
        Sample {
            session_id,
            category,
            name,
            data,
            timestamp,
        }
    }

    /// An event as sent: valid, or (1% of the time) invalid. Returns the
    /// event and whether it is valid.
    pub fn wire_event(&mut self, at: Timestamp) -> (Value, bool) {
        let sample = self.sample(at);
        let mut event = sample.to_wire();
        if !self.rng.chance(INVALID_PER_MILLE) {
            return (event, true);
        }
        if let Value::Object(fields) = &mut event {
            match self.rng.below(6) {
                0 => {
                    fields.insert("category".into(), Value::from("checkout funnel"));
                }
                1 => {
                    fields.insert("session_id".into(), Value::from("not-a-session"));
                }
                2 => {
                    if let Some(Value::Object(data)) = fields.get_mut("data") {
                        data.insert("referrer".into(), Value::from("https://news.example"));
                    }
                }
                3 => {
                    let future = Timestamp::from_micros(at.as_micros() + 3_600_000_000);
                    fields.insert("timestamp".into(), Value::from(wire_timestamp(future)));
                }
                4 => {
                    fields.remove("name");
                }
                _ => {
                    fields.insert("timestamp".into(), Value::from("yesterday at noon"));
                }
            }
        }
        (event, false)
    }

    /// An event for the client crate: valid, or (1% of the time) invalid in
    /// one of the ways a typed event can be (an unknown category, a field
    /// the schema forbids, a timestamp an hour ahead, an empty name).
    /// Returns the event and whether it is valid.
    pub fn client_event(&mut self, at: Timestamp) -> (eye_client::Event, bool) {
        let sample = self.sample(at);
        let mut event = eye_client::Event::new(
            sample.session_id,
            sample.category,
            sample.name,
            sample.timestamp,
        );
        event.data = sample.data;
        if !self.rng.chance(INVALID_PER_MILLE) {
            return (event, true);
        }
        match self.rng.below(4) {
            0 => event.category = "checkout funnel".to_owned(),
            1 => {
                event
                    .data
                    .insert("referrer".into(), Value::from("https://news.example"));
            }
            2 => event.timestamp = Timestamp::from_micros(at.as_micros() + 3_600_000_000),
            _ => event.name = String::new(),
        }
        (event, false)
    }

    /// A JSON array body of `n` events; the body and how many are valid.
    pub fn batch_body(&mut self, n: usize, at: Timestamp) -> (Vec<u8>, usize) {
        let mut events = Vec::with_capacity(n);
        let mut valid = 0;
        for _ in 0..n {
            let (event, ok) = self.wire_event(at);
            valid += usize::from(ok);
            events.push(event);
        }
        let body = serde_json::to_vec(&Value::Array(events)).unwrap_or_default();
        (body, valid)
    }

    /// A path with the query string real pages carry (campaign tags, ids).
    fn path(&mut self) -> String {
        let a = WORDS[self.rng.index(WORDS.len())];
        let b = WORDS[self.rng.index(WORDS.len())];
        let c = WORDS[self.rng.index(WORDS.len())];
        let item = self.rng.below(100_000);
        let click = self.rng.next_u64();
        format!(
            "/{a}/{b}/{c}-{item}?utm_source=newsletter&utm_medium=email&utm_campaign={b}-{c}&gclid={click:016x}{:08x}",
            self.rng.below(u64::from(u32::MAX))
        )
    }

    /// A submitted form: a handful of string fields.
    fn form(&mut self) -> Map<String, Value> {
        let user = self.rng.below(1_000_000);
        let mut form = Map::new();
        form.insert(
            "email".into(),
            Value::from(format!("user{user}@example.com")),
        );
        form.insert("name".into(), Value::from(format!("Visitor {user}")));
        form.insert(
            "plan".into(),
            Value::from(PLANS[self.rng.index(PLANS.len())]),
        );
        form.insert(
            "message".into(),
            Value::from("Hello, we would like a demo for our team next week."),
        );
        form
    }
}

fn page(host: &str, path: &str) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("host".into(), Value::from(host));
    data.insert("path".into(), Value::from(path));
    data
}

fn random_uuid(rng: &mut Rng) -> Uuid {
    let bits = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_contract::{SchemaRegistry, Validator};

    fn validator() -> Validator {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let schemas = SchemaRegistry::load_dir(&dir).expect("schemas load");
        Validator::new(std::sync::Arc::new(schemas))
    }

    #[test]
    fn valid_events_pass_the_contract_and_invalid_ones_fail() {
        let validator = validator();
        let mut traffic = Traffic::new(1, 100);
        let now = Timestamp::now();
        let (mut valid, mut invalid, mut categories) = (0, 0, std::collections::BTreeSet::new());
        for _ in 0..5000 {
            let (event, ok) = traffic.wire_event(now);
            let bytes = serde_json::to_vec(&event).expect("serializes");
            let verdict = validator.validate_slice("demo", &bytes, now);
            assert_eq!(verdict.is_ok(), ok, "{event}: {verdict:?}");
            if let Ok(event) = verdict {
                categories.insert(event.category);
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert_eq!(categories.len(), 3, "{categories:?}");
        assert!((20..100).contains(&invalid), "{invalid} invalid of 5000");
        assert!(valid > 4800);
    }

    #[test]
    fn data_has_a_realistic_size_and_the_event_is_what_the_gateway_publishes() {
        let mut traffic = Traffic::new(2, 10);
        let sizes: Vec<usize> = (0..1000)
            .map(|_| {
                serde_json::to_string(&traffic.sample(Timestamp::now()).data)
                    .expect("data")
                    .len()
            })
            .collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((150..=500).contains(&mean), "mean data size {mean}");

        let sample = traffic.sample(Timestamp::now());
        let bytes = serde_json::to_vec(&sample.to_wire()).expect("wire");
        let event = validator()
            .validate_slice("demo", &bytes, Timestamp::now())
            .expect("valid");
        assert_eq!(event, sample.to_event("demo"));
    }

    #[test]
    fn client_events_are_valid_or_not_as_said() {
        let validator = validator();
        let mut traffic = Traffic::new(5, 100);
        let now = Timestamp::now();
        let mut invalid = 0;
        for _ in 0..3000 {
            let (event, ok) = traffic.client_event(now);
            let bytes = serde_json::to_vec(&event).expect("serializes");
            let verdict = validator.validate_slice("demo", &bytes, now);
            assert_eq!(verdict.is_ok(), ok, "{event:?}: {verdict:?}");
            invalid += usize::from(!ok);
        }
        assert!((10..70).contains(&invalid), "{invalid} invalid of 3000");
    }

    #[test]
    fn wire_timestamps_have_no_zone() {
        let ts = Timestamp::from_micros(1_632_647_727_243_860);
        assert_eq!(wire_timestamp(ts), "2021-09-26 09:15:27.243860");
    }
}
