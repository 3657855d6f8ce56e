//! The example events (copied from the project's shared examples into
//! `fixtures/`) must pass the real `schemas/` directory, and survive a
//! serialize → validate round trip.

use std::path::PathBuf;
use std::sync::Arc;

use eye_contract::{events_subject, SchemaRegistry, Timestamp, Validator};
use serde_json::Value;

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn validator() -> Validator {
    let registry = SchemaRegistry::load_dir(schemas_dir()).expect("schemas/ loads");
    Validator::new(Arc::new(registry))
}

#[test]
fn the_schema_directory_defines_the_three_categories() {
    let registry = SchemaRegistry::load_dir(schemas_dir()).expect("schemas/ loads");
    assert_eq!(
        registry.categories().collect::<Vec<_>>(),
        ["form interaction", "page interaction", "party"]
    );
    for category in registry.categories() {
        let schema = registry.schema(category).expect("schema");
        assert!(schema.get("title").is_some() && schema.get("description").is_some());
    }
    assert_eq!(
        events_subject("demo", "page interaction"),
        "eye.events.demo.page_20interaction"
    );
}

#[test]
fn the_canonical_example_is_accepted() {
    let v = validator();
    let event = v
        .validate_slice("demo", &fixture("party.json"), Timestamp::now())
        .expect("party.json is accepted");
    assert_eq!(event.category, "party");
    assert_eq!(event.name, "AppName");
    assert_eq!(
        event.session_id.to_string(),
        "e2085be5-9137-4e4e-80b5-f1ffddc25423"
    );
    assert_eq!(event.timestamp.to_rfc3339(), "2021-09-26T09:15:27.243860Z");
}

#[test]
fn every_batch_example_is_accepted_and_round_trips() {
    let v = validator();
    let now = Timestamp::now();
    let batch: Value = serde_json::from_slice(&fixture("batch.json")).expect("batch is JSON");
    let items = batch.as_array().expect("batch is an array");
    assert_eq!(items.len(), 3);
    let mut seen = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let event = v
            .validate_value("demo", item.clone(), now)
            .unwrap_or_else(|e| panic!("batch[{i}] rejected: {e:?}"));
        let raw = serde_json::to_vec(item).expect("serialize");
        assert_eq!(v.validate_slice("demo", &raw, now), Ok(event.clone()));
        let normalized = serde_json::to_vec(&event).expect("serialize");
        assert_eq!(
            v.validate_slice("demo", &normalized, now),
            Ok(event.clone())
        );
        seen.push((event.category, event.name, event.event_id));
    }
    assert_eq!(seen[0].0, "page interaction");
    assert_eq!(seen[1].1, "cta click");
    assert_eq!(seen[2].0, "form interaction");
    // Distinct events, distinct derived ids.
    assert_ne!(seen[0].2, seen[1].2);
    assert_ne!(seen[1].2, seen[2].2);
}
