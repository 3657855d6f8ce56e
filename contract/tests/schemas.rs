//! The real `schemas/` reject each kind of broken event with a precise
//! error: a name the category does not have, a missing field, a number where
//! a string belongs, an unexpected field, a form value that is not a string.

use std::path::PathBuf;
use std::sync::Arc;

use eye_contract::{ErrorCode, EventError, SchemaRegistry, Timestamp, Validator};
use serde_json::{json, Value};

fn validator() -> Validator {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let registry = SchemaRegistry::load_dir(dir).expect("schemas/ loads");
    Validator::new(Arc::new(registry))
}

fn event(category: &str, name: &str, data: Value) -> Value {
    json!({
        "session_id": "3f1c2d7a-8b4e-4c1a-9d2e-5a6b7c8d9e0f",
        "category": category,
        "name": name,
        "data": data,
        "timestamp": "2021-09-26 09:15:27.243860"
    })
}

fn accepted(category: &str, name: &str, data: Value) {
    if let Err(e) =
        validator().validate_value("demo", event(category, name, data), Timestamp::now())
    {
        panic!("{category}/{name} should be accepted: {e:?}");
    }
}

/// Asserts a schema violation at `pointer` whose message mentions every word.
fn violation(category: &str, name: &str, data: Value, pointer: &str, words: &[&str]) -> EventError {
    let e = validator()
        .validate_value("demo", event(category, name, data), Timestamp::now())
        .expect_err("should be rejected");
    assert_eq!(e.code, ErrorCode::SchemaViolation, "{e:?}");
    assert_eq!(e.pointer, pointer, "{}", e.message);
    for w in words {
        assert!(e.message.contains(w), "{:?} lacks {w:?}", e.message);
    }
    e
}

#[test]
fn party_accepts_any_name_and_exactly_host_and_path() {
    accepted("party", "AppName", json!({"host": "h", "path": "/"}));
    accepted("party", "Another app 2", json!({"host": "h", "path": "/"}));
    // Top-level fields other than name/category/data are the contract's business.
    let mut with_id = event("party", "AppName", json!({"host": "h", "path": "/"}));
    with_id["event_id"] = json!("abc");
    assert!(validator()
        .validate_value("demo", with_id, Timestamp::now())
        .is_ok());

    violation(
        "party",
        "AppName",
        json!({"path": "/"}),
        "/data/host",
        &["host", "missing"],
    );
    violation(
        "party",
        "AppName",
        json!({"host": "h"}),
        "/data/path",
        &["path"],
    );
    violation(
        "party",
        "AppName",
        json!({"host": "h", "path": 42}),
        "/data/path",
        &["42", "string"],
    );
    violation(
        "party",
        "AppName",
        json!({"host": 1, "path": "/"}),
        "/data/host",
        &["string"],
    );
    violation(
        "party",
        "AppName",
        json!({"host": "h", "path": "/", "x": 1}),
        "/data/x",
        &["\"x\"", "not allowed"],
    );
}

#[test]
fn page_interaction_knows_pageview_and_cta_click() {
    accepted(
        "page interaction",
        "pageview",
        json!({"host": "h", "path": "/"}),
    );
    accepted(
        "page interaction",
        "cta click",
        json!({"host": "h", "path": "/", "element": "chat bubble"}),
    );

    violation(
        "page interaction",
        "scroll",
        json!({"host": "h", "path": "/"}),
        "/name",
        &["pageview", "cta click"],
    );
    violation(
        "page interaction",
        "Pageview",
        json!({"host": "h", "path": "/"}),
        "/name",
        &["pageview"],
    );
    violation(
        "page interaction",
        "pageview",
        json!({"path": "/"}),
        "/data/host",
        &["host"],
    );
    violation(
        "page interaction",
        "cta click",
        json!({"host": "h", "path": "/"}),
        "/data/element",
        &["element", "missing"],
    );
    violation(
        "page interaction",
        "cta click",
        json!({"host": "h", "path": "/", "element": 5}),
        "/data/element",
        &["string"],
    );
    violation(
        "page interaction",
        "pageview",
        json!({"host": "h", "path": 42}),
        "/data/path",
        &["string"],
    );
    // `element` belongs to cta click only.
    violation(
        "page interaction",
        "pageview",
        json!({"host": "h", "path": "/", "element": "x"}),
        "/data/element",
        &["not allowed"],
    );
    violation(
        "page interaction",
        "cta click",
        json!({"host": "h", "path": "/", "element": "x", "extra": true}),
        "/data/extra",
        &["not allowed"],
    );
}

#[test]
fn form_interaction_knows_submit_with_string_form_values() {
    accepted(
        "form interaction",
        "submit",
        json!({"host": "h", "path": "/", "form": {"a": "b"}}),
    );
    accepted(
        "form interaction",
        "submit",
        json!({"host": "h", "path": "/", "form": {}}),
    );

    violation(
        "form interaction",
        "reset",
        json!({"host": "h", "path": "/", "form": {}}),
        "/name",
        &["submit"],
    );
    violation(
        "form interaction",
        "submit",
        json!({"host": "h", "path": "/", "form": {"age": 42}}),
        "/data/form/age",
        &["42", "string"],
    );
    violation(
        "form interaction",
        "submit",
        json!({"host": "h", "path": "/", "form": {"tags": ["a"]}}),
        "/data/form/tags",
        &["string"],
    );
    violation(
        "form interaction",
        "submit",
        json!({"host": "h", "path": "/", "form": "a=b"}),
        "/data/form",
        &["object"],
    );
    violation(
        "form interaction",
        "submit",
        json!({"host": "h", "path": "/"}),
        "/data/form",
        &["form", "missing"],
    );
    violation(
        "form interaction",
        "submit",
        json!({"path": "/", "form": {}}),
        "/data/host",
        &["host"],
    );
    violation(
        "form interaction",
        "submit",
        json!({"host": "h", "path": "/", "form": {}, "x": 1}),
        "/data/x",
        &["not allowed"],
    );
}
