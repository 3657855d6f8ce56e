use super::*;
use crate::schema::DRAFT_2020_12;
use serde_json::json;
use std::time::Duration;

const CLIENT: &str = "demo";
const SESSION: &str = "e2085be5-9137-4e4e-80b5-f1ffddc25423";

fn now() -> Timestamp {
    Timestamp::parse("2021-09-26 09:20:00").expect("now")
}

fn registry() -> Arc<SchemaRegistry> {
    let reg = SchemaRegistry::from_schemas([
        (
            "party.json",
            json!({"$schema": DRAFT_2020_12, "x-eye-category": "party"}),
        ),
        (
            "page.json",
            json!({
                "$schema": DRAFT_2020_12,
                "x-eye-category": "page interaction",
                "properties": {
                    "name": {"enum": ["pageview"]},
                    "data": {
                        "type": "object",
                        "required": ["host", "path"],
                        "properties": {"host": {"type": "string"}, "path": {"type": "string"}},
                        "additionalProperties": false
                    }
                }
            }),
        ),
    ])
    .expect("registry");
    Arc::new(reg)
}

fn validator() -> Validator {
    Validator::new(registry())
}

fn party() -> Value {
    json!({
        "session_id": SESSION,
        "category": "party",
        "name": "AppName",
        "data": {"host": "www.party.com", "path": "/"},
        "timestamp": "2021-09-26 09:15:27.243860"
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut e = party();
    e[field] = value;
    e
}

fn without(field: &str) -> Value {
    let mut e = party();
    if let Some(obj) = e.as_object_mut() {
        obj.remove(field);
    }
    e
}

fn ok(event: Value) -> Event {
    validator()
        .validate_value(CLIENT, event, now())
        .unwrap_or_else(|e| panic!("should be accepted: {e:?}"))
}

fn err(event: Value) -> EventError {
    let v = validator();
    let from_value = v
        .validate_value(CLIENT, event.clone(), now())
        .expect_err("should be rejected");
    // Bytes and parsed JSON must give the same answer.
    let bytes = serde_json::to_vec(&event).expect("serialize");
    let from_slice = v
        .validate_slice(CLIENT, &bytes, now())
        .expect_err("should be rejected");
    assert_eq!(from_value, from_slice);
    from_value
}

fn assert_err(event: Value, code: ErrorCode, pointer: &str) -> EventError {
    let e = err(event);
    assert_eq!(
        (e.code, e.pointer.as_str()),
        (code, pointer),
        "{}",
        e.message
    );
    e
}

#[test]
fn the_canonical_example_is_accepted_and_normalized() {
    let e = ok(party());
    assert_eq!(e.session_id.to_string(), SESSION);
    assert_eq!(e.category, "party");
    assert_eq!(e.name, "AppName");
    assert_eq!(e.data, *party()["data"].as_object().expect("object"));
    assert_eq!(e.timestamp.to_rfc3339(), "2021-09-26T09:15:27.243860Z");
    assert_eq!(
        e.event_id,
        derive_event_id(
            CLIENT,
            &e.session_id,
            "party",
            "AppName",
            &e.data,
            e.timestamp
        )
    );
}

#[test]
fn slice_and_value_agree_on_success() {
    let bytes = serde_json::to_vec(&party()).expect("serialize");
    let a = validator()
        .validate_slice(CLIENT, &bytes, now())
        .expect("accepted");
    assert_eq!(a, ok(party()));
}

#[test]
fn session_id_any_case_is_stored_lowercase() {
    let e = ok(with("session_id", json!(SESSION.to_uppercase())));
    assert_eq!(e.session_id.to_string(), SESSION);
    let serialized = serde_json::to_value(&e).expect("serialize");
    assert_eq!(serialized["session_id"], json!(SESSION));
    // Any version is fine: v1, v7, nil.
    ok(with(
        "session_id",
        json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
    ));
    ok(with(
        "session_id",
        json!("018f6b1e-4c2a-7abc-8def-0123456789ab"),
    ));
    ok(with(
        "session_id",
        json!("00000000-0000-0000-0000-000000000000"),
    ));
}

#[test]
fn session_id_must_be_a_hyphenated_uuid() {
    for bad in [
        "not-a-uuid",
        "",
        "e2085be591374e4e80b5f1ffddc25423",
        "{e2085be5-9137-4e4e-80b5-f1ffddc25423}",
        "urn:uuid:e2085be5-9137-4e4e-80b5-f1ffddc25423",
        "e2085be5-9137-4e4e-80b5-f1ffddc2542g",
        "e2085be59-137-4e4e-80b5-f1ffddc25423",
        " e2085be5-9137-4e4e-80b5-f1ffddc25423",
    ] {
        let e = assert_err(
            with("session_id", json!(bad)),
            ErrorCode::InvalidSessionId,
            "/session_id",
        );
        assert!(e.message.contains("hyphenated"), "{}", e.message);
    }
}

#[test]
fn categories_with_spaces_are_looked_up_in_the_registry() {
    let e = ok(json!({
        "session_id": SESSION,
        "category": "page interaction",
        "name": "pageview",
        "data": {"host": "h", "path": "/"},
        "timestamp": "2021-09-26 09:15:27"
    }));
    assert_eq!(e.category, "page interaction");
    let e = assert_err(
        with("category", json!("page  interaction")),
        ErrorCode::UnknownCategory,
        "/category",
    );
    assert!(
        e.message.contains("\"page interaction\", \"party\""),
        "{}",
        e.message
    );
    assert_err(
        with("category", json!("Party")),
        ErrorCode::UnknownCategory,
        "/category",
    );
}

#[test]
fn data_must_be_an_object() {
    for (bad, word) in [
        (json!([1, 2]), "an array"),
        (json!("x"), "a string"),
        (Value::Null, "null"),
        (json!(5), "a number"),
    ] {
        let e = assert_err(with("data", bad), ErrorCode::InvalidType, "/data");
        assert!(e.message.contains(word), "{}", e.message);
    }
    // An empty object is an object (the category's schema decides if that is enough).
    ok(with("data", json!({})));
}

#[test]
fn the_event_must_be_an_object() {
    for bad in [json!([party()]), json!("event"), Value::Null, json!(1)] {
        assert_err(bad, ErrorCode::InvalidType, "");
    }
}

#[test]
fn unknown_top_level_fields_are_rejected() {
    let e = assert_err(with("extra", json!(1)), ErrorCode::UnknownField, "/extra");
    assert!(e.message.contains("\"extra\""), "{}", e.message);
    assert_err(with("a/b", json!(1)), ErrorCode::UnknownField, "/a~1b");
    assert_err(with("Name", json!("x")), ErrorCode::UnknownField, "/Name");
}

#[test]
fn every_required_field_is_required() {
    for field in ["session_id", "category", "name", "data", "timestamp"] {
        let e = assert_err(
            without(field),
            ErrorCode::MissingField,
            &format!("/{field}"),
        );
        assert!(e.message.contains(field), "{}", e.message);
    }
    // event_id is optional, and null means absent.
    ok(without("event_id"));
    let a = ok(with("event_id", Value::Null));
    assert_eq!(a.event_id, ok(party()).event_id);
}

#[test]
fn wrong_json_types_are_rejected() {
    for field in ["session_id", "category", "name", "timestamp", "event_id"] {
        for bad in [json!(1), json!(true), json!([]), json!({})] {
            let e = assert_err(
                with(field, bad),
                ErrorCode::InvalidType,
                &format!("/{field}"),
            );
            assert!(e.message.contains("must be a string"), "{}", e.message);
        }
    }
    for field in ["session_id", "category", "name", "timestamp"] {
        assert_err(
            with(field, Value::Null),
            ErrorCode::InvalidType,
            &format!("/{field}"),
        );
    }
    // A Unix epoch number is not an accepted timestamp spelling.
    assert_err(
        with("timestamp", json!(1_632_647_727)),
        ErrorCode::InvalidType,
        "/timestamp",
    );
}

#[test]
fn name_rules() {
    for bad in ["", " ", "\t\n", "\u{3000}"] {
        assert_err(with("name", json!(bad)), ErrorCode::InvalidName, "/name");
    }
    ok(with("name", json!("x".repeat(256))));
    ok(with("name", json!("é".repeat(256))));
    let e = assert_err(
        with("name", json!("x".repeat(257))),
        ErrorCode::InvalidName,
        "/name",
    );
    assert!(e.message.contains("257"), "{}", e.message);
    ok(with("name", json!(" padded ")));
}

#[test]
fn client_event_ids() {
    for good in ["a", "abc-1.2_3:4", "ORDER:2021-09-26:42", &"x".repeat(64)] {
        let e = ok(with("event_id", json!(good)));
        assert_eq!(e.event_id, good);
    }
    for bad in ["", "a b", "a/b", "é", "a\n", &"x".repeat(65), "{x}"] {
        assert_err(
            with("event_id", json!(bad)),
            ErrorCode::InvalidEventId,
            "/event_id",
        );
    }
}

#[test]
fn timestamps_are_parsed_and_checked() {
    let e = ok(with("timestamp", json!("2021-09-26T11:15:27.243860+02:00")));
    assert_eq!(e.timestamp, ok(party()).timestamp);
    let e = ok(with("timestamp", json!("2021-09-26T09:15:27.2438609Z")));
    assert_eq!(e.timestamp, ok(party()).timestamp);

    for bad in [
        "2021-02-30 00:00:00",
        "2021-09-26 24:00:00",
        "",
        " 2021-09-26 09:15:27",
        "yesterday",
        "10000-01-01 00:00:00",
    ] {
        assert_err(
            with("timestamp", json!(bad)),
            ErrorCode::InvalidTimestamp,
            "/timestamp",
        );
    }
    assert_err(
        with("timestamp", json!("0000-01-01 00:00:00")),
        ErrorCode::TimestampTooOld,
        "/timestamp",
    );
    assert_err(
        with("timestamp", json!("1969-12-31 23:59:59.999999")),
        ErrorCode::TimestampTooOld,
        "/timestamp",
    );
    ok(with("timestamp", json!("1970-01-01 00:00:00")));
    // now() is 09:20:00; the default skew is 5 minutes.
    ok(with("timestamp", json!("2021-09-26 09:25:00")));
    assert_err(
        with("timestamp", json!("2021-09-26 09:25:00.000001")),
        ErrorCode::TimestampInFuture,
        "/timestamp",
    );
}

#[test]
fn configured_time_rules_apply() {
    let v = validator().with_time_rules(TimeRules {
        max_future_skew: Duration::ZERO,
        max_age: Some(Duration::from_secs(3600)),
    });
    assert_eq!(v.time_rules().max_future_skew, Duration::ZERO);
    let at = |ts: &str| v.validate_value(CLIENT, with("timestamp", json!(ts)), now());
    assert!(at("2021-09-26 09:20:00").is_ok());
    assert_eq!(
        at("2021-09-26 09:20:00.000001").map_err(|e| e.code),
        Err(ErrorCode::TimestampInFuture)
    );
    assert!(at("2021-09-26 08:20:00").is_ok());
    assert_eq!(
        at("2021-09-26 08:19:59.999999").map_err(|e| e.code),
        Err(ErrorCode::TimestampTooOld)
    );
}

#[test]
fn schema_violations_come_last_and_point_into_the_event() {
    let page = |name: &str, data: Value| {
        json!({
            "session_id": SESSION, "category": "page interaction", "name": name,
            "data": data, "timestamp": "2021-09-26 09:15:27"
        })
    };
    assert_err(
        page("click", json!({"host": "h", "path": "/"})),
        ErrorCode::SchemaViolation,
        "/name",
    );
    let e = assert_err(
        page("pageview", json!({"path": "/"})),
        ErrorCode::SchemaViolation,
        "/data/host",
    );
    assert!(e.message.contains("host"), "{}", e.message);
    assert_err(
        page("pageview", json!({"host": "h", "path": 1})),
        ErrorCode::SchemaViolation,
        "/data/path",
    );
    assert_err(
        page("pageview", json!({"host": "h", "path": "/", "x": 1})),
        ErrorCode::SchemaViolation,
        "/data/x",
    );
}

#[test]
fn the_first_failing_rule_wins() {
    // unknown field before missing field
    let mut e = without("name");
    e["zzz"] = json!(1);
    assert_eq!(err(e).code, ErrorCode::UnknownField);
    // missing field before wrong type
    let mut e = without("name");
    e["data"] = json!([]);
    assert_eq!(err(e).code, ErrorCode::MissingField);
    // wrong type (of a later field) before session id
    let mut e = with("session_id", json!("nope"));
    e["timestamp"] = json!(5);
    assert_eq!(err(e).code, ErrorCode::InvalidType);
    // session id before category
    let mut e = with("session_id", json!("nope"));
    e["category"] = json!("nope");
    assert_eq!(err(e).code, ErrorCode::InvalidSessionId);
    // category before name
    let mut e = with("category", json!("nope"));
    e["name"] = json!("");
    assert_eq!(err(e).code, ErrorCode::UnknownCategory);
    // name before timestamp
    let mut e = with("name", json!(""));
    e["timestamp"] = json!("bad");
    assert_eq!(err(e).code, ErrorCode::InvalidName);
    // timestamp before event id
    let mut e = with("timestamp", json!("bad"));
    e["event_id"] = json!("bad id");
    assert_eq!(err(e).code, ErrorCode::InvalidTimestamp);
    // event id before schema
    let e = json!({
        "session_id": SESSION, "category": "page interaction", "name": "nope",
        "data": {}, "timestamp": "2021-09-26 09:15:27", "event_id": "bad id"
    });
    assert_eq!(err(e).code, ErrorCode::InvalidEventId);
}

/// An event whose total nesting (event object = 1) is exactly `depth`.
fn nested_event_text(depth: usize) -> String {
    assert!(depth >= 2);
    let arrays = depth - 2;
    format!(
        r#"{{"session_id":"{SESSION}","category":"party","name":"n","timestamp":"2021-09-26 09:15:27","data":{{"x":{}0{}, "s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"["}}}}"#,
        "[".repeat(arrays),
        "]".repeat(arrays)
    )
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let v = validator();
    let text = nested_event_text(32);
    v.validate_slice(CLIENT, text.as_bytes(), now())
        .expect("depth 32 accepted");
    let value: Value = serde_json::from_str(&text).expect("json");
    v.validate_value(CLIENT, value, now())
        .expect("depth 32 accepted");
}

#[test]
fn nesting_beyond_the_limit_is_too_deep() {
    let v = validator();
    let text = nested_event_text(33);
    let e = v
        .validate_slice(CLIENT, text.as_bytes(), now())
        .expect_err("depth 33");
    assert_eq!(e.code, ErrorCode::TooDeep);
    assert!(
        e.message.contains("32") && e.message.contains("column"),
        "{}",
        e.message
    );
    let value: Value = serde_json::from_str(&text).expect("json");
    let e = v
        .validate_value(CLIENT, value, now())
        .expect_err("depth 33");
    assert_eq!(e.code, ErrorCode::TooDeep);
}

#[test]
fn very_deep_input_is_an_error_not_a_stack_overflow() {
    let v = validator().with_limits(Limits {
        max_event_bytes: 1 << 20,
        max_depth: 32,
    });
    let closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let unclosed = format!(r#"{{"data": {}"#, "[".repeat(10_000));
    for text in [closed, unclosed] {
        let e = v
            .validate_slice(CLIENT, text.as_bytes(), now())
            .expect_err("too deep");
        assert_eq!(e.code, ErrorCode::TooDeep);
    }
    // A value built in memory can be deeper than any parser allows.
    let mut deep = json!(0);
    for _ in 0..100_000 {
        deep = Value::Array(vec![deep]);
    }
    let e = v.validate_value(CLIENT, deep, now()).expect_err("too deep");
    assert_eq!(e.code, ErrorCode::TooDeep);
}

#[test]
fn size_limit_applies_before_parsing_and_is_inclusive() {
    let bytes = serde_json::to_vec(&party()).expect("serialize");
    let exact = validator().with_limits(Limits {
        max_event_bytes: bytes.len(),
        ..Limits::default()
    });
    exact
        .validate_slice(CLIENT, &bytes, now())
        .expect("exactly at the limit");
    exact
        .validate_value(CLIENT, party(), now())
        .expect("exactly at the limit");
    let smaller = validator().with_limits(Limits {
        max_event_bytes: bytes.len() - 1,
        ..Limits::default()
    });
    let e = smaller
        .validate_slice(CLIENT, &bytes, now())
        .expect_err("too large");
    assert_eq!((e.code, e.pointer.as_str()), (ErrorCode::EventTooLarge, ""));
    let e = smaller
        .validate_value(CLIENT, party(), now())
        .expect_err("too large");
    assert_eq!(e.code, ErrorCode::EventTooLarge);

    // Default 32 KiB; garbage that large is refused without being parsed.
    let junk = vec![b'x'; 32 * 1024 + 1];
    let e = validator()
        .validate_slice(CLIENT, &junk, now())
        .expect_err("too large");
    assert_eq!(e.code, ErrorCode::EventTooLarge);
    let mut big = party();
    big["data"]["blob"] = json!("x".repeat(40_000));
    let e = validator()
        .validate_value(CLIENT, big, now())
        .expect_err("too large");
    assert_eq!(e.code, ErrorCode::EventTooLarge);
    assert!(e.message.contains("32768"), "{}", e.message);
}

#[test]
fn invalid_json_reports_line_and_column() {
    let v = validator();
    for bad in [
        &b"{\n  \"name\": oops\n}"[..],
        b"",
        b"{} {}",
        b"{\"a\":1,}",
        b"\xff\xfe",
        b"{\"a\": \"\xff\"}",
    ] {
        let e = v.validate_slice(CLIENT, bad, now()).expect_err("invalid");
        assert_eq!(
            (e.code, e.pointer.as_str()),
            (ErrorCode::InvalidJson, ""),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("line") && e.message.contains("column"),
            "{}",
            e.message
        );
    }
    let e = v
        .validate_slice(CLIENT, b"{\n  \"name\": oops\n}", now())
        .expect_err("invalid");
    assert!(e.message.contains("line 2"), "{}", e.message);
}

#[test]
fn serialized_events_validate_to_the_same_event() {
    let events = [
        party(),
        with("event_id", json!("client-id:1")),
        with("session_id", json!(SESSION.to_uppercase())),
        with("timestamp", json!("2021-09-26T04:15:27.2438609-05:00")),
        with(
            "data",
            json!({"nested": {"b": [1, 2.5, null, true], "a": "é"}}),
        ),
    ];
    let v = validator();
    for event in events {
        let first = v.validate_value(CLIENT, event, now()).expect("accepted");
        let bytes = serde_json::to_vec(&first).expect("serialize");
        let second = v
            .validate_slice(CLIENT, &bytes, now())
            .expect("re-accepted");
        assert_eq!(first, second);
        // The re-validated event carries the id, so it cannot be re-derived differently.
        let third = v
            .validate_slice("another-client", &bytes, now())
            .expect("re-accepted");
        assert_eq!(first.event_id, third.event_id);
    }
}

#[test]
fn derived_ids_follow_content_and_client() {
    let v = validator();
    let a = ok(party());
    let reordered = br#"{"timestamp":"2021-09-26T09:15:27.24386Z","data":{"path":"/","host":"www.party.com"},"name":"AppName","category":"party","session_id":"E2085BE5-9137-4E4E-80B5-F1FFDDC25423"}"#;
    let b = v
        .validate_slice(CLIENT, reordered, now())
        .expect("accepted");
    assert_eq!(a.event_id, b.event_id);
    let other_client = v.validate_value("other", party(), now()).expect("accepted");
    assert_ne!(a.event_id, other_client.event_id);
    assert_ne!(a.event_id, ok(with("name", json!("AppName2"))).event_id);
    // A client-given id is kept as is.
    assert_eq!(ok(with("event_id", json!("k1"))).event_id, "k1");
}

#[test]
fn validator_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Validator>();
    let v = validator();
    assert_eq!(v.limits(), &Limits::default());
    assert!(v.registry().contains("party"));
}
