//! Hostile input, as properties: any body the gateway can be sent (arbitrary
//! bytes, arbitrary JSON values, near-valid events, NDJSON lines, gzip of any
//! of them, raw bytes claiming to be gzip) gets a 4xx for the whole request or
//! per-event results with 202/422, never a panic or a 5xx; the same body gets
//! the same answer plain and gzipped; and splitting finds one result per array
//! element or non-blank NDJSON line.
//!
//! Most cases run the gateway's body path in-process (`hostile_input`, shared
//! with the fuzz target); a bounded number go over HTTP to a real gateway on a
//! testkit NATS and must get the same status as in-process. Case counts are
//! modest so the file runs in seconds; `deploy/fuzz.sh` explores for longer.

mod common;
mod hostile_input;

use std::time::Duration;

use hostile_input::{answer, answer_plain_and_gzipped, gzip, limits, Answer};
use ingest_gateway::body::{Encoding, Format};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

/// Field names of the wire format (and a stranger), so generated objects often
/// look like events.
const KEYS: [&str; 8] = [
    "session_id",
    "category",
    "name",
    "data",
    "timestamp",
    "event_id",
    "host",
    "x",
];

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Json), Just(Format::Ndjson)]
}

/// Strings that matter to the contract (categories, ids, timestamps, escapes,
/// control characters, non-ASCII) and arbitrary ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("party".to_owned()),
        Just("e2085be5-9137-4e4e-80b5-f1ffddc25423".to_owned()),
        Just("2021-09-26 09:15:27.243860".to_owned()),
        Just("2021-09-26T09:15:27Z".to_owned()),
        Just("page interaction".to_owned()),
        Just("\u{0}\u{7f}\u{feff}é日本\\\"".to_owned()),
        any::<String>(),
    ]
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(&KEYS[..]).prop_map(str::to_owned),
                        text()
                    ],
                    inner
                ),
                0..7
            )
            .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The README's event.
fn valid_event() -> Value {
    json!({"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "party",
           "name": "AppName", "data": {"host": "www.party.com", "path": "/"},
           "timestamp": "2021-09-26 09:15:27.243860"})
}

/// A valid event with one field removed, replaced or added.
fn near_valid_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&KEYS[..]),
        prop::option::of(json_value()),
    )
        .prop_map(|(key, value)| {
            let mut event = valid_event();
            let members = event.as_object_mut().expect("an object");
            match value {
                Some(value) => members.insert(key.to_owned(), value),
                None => members.remove(key),
            };
            event
        })
}

/// An event-ish value: valid, near-valid or anything.
fn event_like() -> impl Strategy<Value = Value> {
    prop_oneof![Just(valid_event()), near_valid_event(), json_value()]
}

/// NDJSON lines: events, JSON of any shape, arbitrary text without newlines,
/// blank lines.
fn ndjson_line() -> impl Strategy<Value = String> {
    prop_oneof![
        event_like().prop_map(|v| v.to_string()),
        any::<String>().prop_map(|s| s.replace('\n', " ")),
        Just(String::new()),
        Just("  \t ".to_owned()),
    ]
}

/// Lines joined with `\n` or `\r\n`, with or without a final line end.
fn ndjson_body() -> impl Strategy<Value = (Vec<String>, Vec<u8>)> {
    (
        prop::collection::vec(ndjson_line(), 0..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, final_end)| {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut body = lines.join(end);
            if final_end {
                body.push_str(end);
            }
            (lines, body.into_bytes())
        })
}

/// The answer to a body of `bytes` bytes holding `events` well-formed events:
/// a 400 for none, a 413 for too many, else exactly one result per event. A
/// body over the size limit is refused when read (in-process only its gzipped
/// copy is, which `answer_plain_and_gzipped` checks), so nothing is expected.
fn one_result_per_event(
    got: &Answer,
    events: usize,
    bytes: usize,
    limits: ingest_gateway::body::BodyLimits,
) -> Result<(), TestCaseError> {
    if bytes > limits.max_body_bytes {
        return Ok(());
    }
    match got {
        Answer::Request { status: 400, .. } if events == 0 => {}
        Answer::Request { status: 413, .. } if events > limits.max_events => {}
        Answer::Events { codes, .. } if (1..=limits.max_events).contains(&events) => {
            prop_assert_eq!(codes.len(), events)
        }
        other => prop_assert!(false, "{events} events: {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn any_bytes_get_a_4xx_or_per_event_results(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        format in format(),
        as_gzip in any::<bool>(),
        small in any::<bool>(),
    ) {
        let encoding = if as_gzip { Encoding::Gzip } else { Encoding::Identity };
        answer(&bytes, format, encoding, limits(small));
    }

    #[test]
    fn any_bytes_gzipped_get_the_same_answer_as_plain(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        format in format(),
        small in any::<bool>(),
    ) {
        answer_plain_and_gzipped(&bytes, format, limits(small));
    }

    #[test]
    fn a_json_value_gets_one_result_per_array_element_or_a_4xx(
        value in prop_oneof![
            event_like(),
            prop::collection::vec(event_like(), 0..10).prop_map(Value::Array),
        ],
        pretty in any::<bool>(),
        small in any::<bool>(),
    ) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).expect("serializes")
        } else {
            value.to_string()
        };
        let limits = limits(small);
        let got = answer_plain_and_gzipped(text.as_bytes(), Format::Json, limits);
        let events = match &value {
            Value::Array(elements) => elements.len(),
            _ => 1,
        };
        // Well-formed JSON: never a malformed body.
        one_result_per_event(&got, events, text.len(), limits)?;
    }

    #[test]
    fn ndjson_gets_one_result_per_non_blank_line_or_a_4xx(
        (lines, body) in ndjson_body(),
        small in any::<bool>(),
    ) {
        let limits = limits(small);
        let got = answer_plain_and_gzipped(&body, Format::Ndjson, limits);
        let events = lines.iter().filter(|l| !l.trim_matches([' ', '\t', '\r']).is_empty()).count();
        one_result_per_event(&got, events, body.len(), limits)?;
    }
}

#[test]
fn a_valid_event_is_accepted_in_process() {
    // The property tests above would pass vacuously if nothing were ever
    // accepted: the README's event must be, plain and gzipped, in both formats.
    let event = valid_event().to_string();
    for format in [Format::Json, Format::Ndjson] {
        let got = answer_plain_and_gzipped(event.as_bytes(), format, limits(false));
        assert_eq!(
            got,
            Answer::Events {
                status: 202,
                codes: vec![None]
            },
            "{format:?}"
        );
    }
}

/// How many generated bodies go over HTTP.
const HTTP_CASES: usize = 48;

/// Bodies of every kind, each with how it is sent: content type, format and
/// whether gzipped.
fn http_case() -> impl Strategy<Value = (Vec<u8>, &'static str, Format, bool)> {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        event_like().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(event_like(), 0..6)
            .prop_map(|v| Value::Array(v).to_string().into_bytes()),
        ndjson_body().prop_map(|(_, body)| body),
    ];
    let content_type = prop::sample::select(
        &[
            ("application/json", Format::Json),
            ("application/json; charset=utf-8", Format::Json),
            ("APPLICATION/JSON", Format::Json),
            ("application/x-ndjson", Format::Ndjson),
            ("application/ndjson", Format::Ndjson),
        ][..],
    );
    (body, content_type, any::<bool>())
        .prop_map(|(body, (content_type, format), gzipped)| (body, content_type, format, gzipped))
}

#[tokio::test]
async fn http_answers_are_never_5xx_and_match_the_in_process_answer() {
    let nats = eye_testkit::shared_nats();
    // The gateway's limits set to the in-process ones.
    let gateway = common::start(
        &nats.url(),
        &[
            "--max-body-bytes",
            "1048576",
            "--max-events-per-request",
            "500",
            // JetStream reserves a stream's bytes against the free disk.
            "--stream-max-bytes",
            "67108864",
        ],
    )
    .await;
    let limits = limits(false);
    assert_eq!((limits.max_body_bytes, limits.max_events), (1_048_576, 500));
    let mut runner = TestRunner::new(Config::default());
    let strategy = http_case();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..HTTP_CASES {
        let (body, content_type, format, gzipped) = strategy
            .new_tree(&mut runner)
            .expect("a generated case")
            .current();
        let sent = if gzipped { gzip(&body) } else { body.clone() };
        let encoding = if gzipped {
            Encoding::Gzip
        } else {
            Encoding::Identity
        };
        let expected = match answer(&sent, format, encoding, limits) {
            Answer::Request { status, .. } | Answer::Events { status, .. } => status,
        };
        let got = tokio::time::timeout(
            Duration::from_secs(30),
            gateway.post_raw("/v1/events", content_type, gzipped, sent),
        )
        .await
        .expect("the gateway answers within 30 s");
        assert!(
            got.status < 500,
            "{content_type} gzip={gzipped} body {:?}: {} {}",
            String::from_utf8_lossy(&body),
            got.status,
            got.body
        );
        assert_eq!(
            got.status,
            expected,
            "{content_type} gzip={gzipped} body {:?}: {}",
            String::from_utf8_lossy(&body),
            got.body
        );
        if matches!(got.status, 202 | 422) {
            let results = got.body["results"].as_array().map_or(0, Vec::len);
            assert!(results >= 1, "per-event results expected: {}", got.body);
        } else {
            assert!(
                got.content_type.starts_with("application/problem+json"),
                "{} is problem+json: {}",
                got.status,
                got.content_type
            );
        }
        *statuses.entry(got.status).or_insert(0) += 1;
    }
    // The cases reached more than one kind of answer.
    assert!(statuses.len() >= 2, "statuses seen: {statuses:?}");
    gateway.service.stop(Duration::from_secs(10)).await;
}
