//! `eye-consumer replay` against real NATS JetStream and ClickHouse 18.16:
//! an event the schema rejects lands in event_errors; after the schema is
//! relaxed, a replay stores it, a second replay (library and binary) stores
//! nothing new, readers see exactly one row, and a reject that still fails is
//! reported with its code. Dead letters (storage_failed) are replayed too,
//! and a body that was cut when stored is reported as not replayable.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use consumer::decode::Decoder;
use consumer::replay::{self, Fate, ReplayArgs, Report};
use consumer::rows::ErrorRow;
use eye_contract::{derive_event_id, Timestamp};
use eye_testkit::service::parse_config;
use serde_json::{json, Value};
use uuid::Uuid;

const ERRORS_FINAL: &str = "SELECT count() FROM event_errors FINAL";
const EVENTS_FINAL: &str = "SELECT count() FROM events FINAL";
const EVENTS_RAW: &str = "SELECT count() FROM events";

/// The repository's schemas with `party` relaxed: `data` may hold more fields.
fn relaxed_schemas(dir: &Path) {
    for entry in std::fs::read_dir(eye_testkit::schemas_dir()).expect("schemas dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("schema");
        let mut schema: Value = serde_json::from_str(&text).expect("schema JSON");
        if schema["x-eye-category"] == "party" {
            schema["properties"]["data"]["additionalProperties"] = json!(true);
        }
        let name = path.file_name().expect("file name");
        std::fs::write(
            dir.join(name),
            serde_json::to_vec_pretty(&schema).expect("json"),
        )
        .expect("write schema");
    }
}

async fn run(config: &consumer::Config, args: &[&str]) -> Report {
    replay::replay(config, &parse_config::<ReplayArgs>(args))
        .await
        .unwrap_or_else(|error| panic!("replay {args:?}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reject_replayed_twice_after_a_schema_fix_is_one_row() {
    let stack = Stack::new("replay").await;
    let service = stack.consumer(&[]).await;

    // Rejected by today's schema: `data` has a field party's schema forbids.
    let session = Uuid::new_v4();
    let mut fixable = party_event(1, session);
    fixable["data"]["referrer"] = json!("https://example.com/");
    // Still wrong after the fix.
    let mut broken = party_event(2, session);
    broken["session_id"] = json!("not-a-uuid");
    publish(
        &stack.js,
        vec![message("demo", &fixable), message("demo", &broken)],
    )
    .await;
    wait_for_count(&stack.client, ERRORS_FINAL, 2).await;
    service.stop(Duration::from_secs(10)).await;
    assert_eq!(count(&stack.client, EVENTS_RAW).await, 0);

    // With the old schemas nothing passes: both are reported with their codes.
    let old = stack.config(&[]);
    let report = run(&old, &[]).await;
    assert_eq!((report.examined, report.passed()), (2, 0), "{report}");
    assert_eq!(
        report.still_failing["schema_violation"].count, 1,
        "{report}"
    );
    assert_eq!(
        report.still_failing["invalid_session_id"].count, 1,
        "{report}"
    );

    let fixed_dir = tempfile::tempdir().expect("temp dir");
    relaxed_schemas(fixed_dir.path());
    let mut fixed = stack.config(&[]);
    fixed.schemas_dir = fixed_dir.path().to_path_buf();

    // A dry run stores nothing.
    let report = run(&fixed, &["--dry-run"]).await;
    assert_eq!(report.stored, 1, "{report}");
    assert_eq!(report.replayed[0].fate, Fate::WouldStore);
    assert_eq!(count(&stack.client, EVENTS_RAW).await, 0);

    // The first replay stores the fixed event, with the reject's client.
    let report = run(&fixed, &[]).await;
    println!("first replay:\n{report}");
    assert_eq!((report.stored, report.already_stored), (1, 0), "{report}");
    assert_eq!(report.failing(), 1, "{report}");
    assert_eq!(
        report.still_failing["invalid_session_id"].count, 1,
        "{report}"
    );
    let data = fixable["data"].as_object().expect("data").clone();
    let ts = Timestamp::parse(fixable["timestamp"].as_str().expect("ts")).expect("time");
    let event_id = derive_event_id("demo", &session, "party", "AppName", &data, ts);
    assert_eq!(report.replayed[0].event_id, event_id);
    assert_eq!(report.replayed[0].client_id, "demo");
    assert_eq!(report.replayed[0].code, "schema_violation");

    // The second replay finds it stored and inserts nothing.
    let report = run(&fixed, &[]).await;
    println!("second replay:\n{report}");
    assert_eq!((report.stored, report.already_stored), (0, 1), "{report}");
    assert_eq!(report.replayed[0].fate, Fate::AlreadyStored);
    assert_eq!(report.failing(), 1, "{report}");

    // Filters: only the still-failing code.
    let report = run(&fixed, &["--code", "invalid_session_id"]).await;
    assert_eq!((report.examined, report.passed()), (1, 0), "{report}");
    let report = run(&fixed, &["--client", "someone-else"]).await;
    assert_eq!(report.examined, 0, "{report}");

    // The binary, as an operator runs it: still one row.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_eye-consumer"))
        .args([
            "--schemas-dir",
            fixed_dir.path().to_str().expect("utf-8 path"),
            "--clickhouse-url",
            &stack.clickhouse_url,
            "--clickhouse-database",
            &stack.database,
            "replay",
            "--json",
            "--client",
            "demo",
        ])
        .output()
        .expect("run eye-consumer replay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(json["stored"], 0, "{json}");
    assert_eq!(json["already_stored"], 1, "{json}");
    assert_eq!(
        json["still_failing"]["invalid_session_id"]["count"], 1,
        "{json}"
    );

    assert_eq!(count(&stack.client, EVENTS_FINAL).await, 1);
    assert_eq!(
        count(&stack.client, EVENTS_RAW).await,
        1,
        "no second copy was inserted"
    );
    let (client_id, stored_id) = stack
        .client
        .query("SELECT client_id, event_id FROM events FINAL")
        .fetch_one::<(String, String)>()
        .await
        .expect("the row");
    assert_eq!(
        (client_id.as_str(), stored_id.as_str()),
        ("demo", event_id.as_str())
    );
    // History stays: both rejects are still in event_errors.
    assert_eq!(count(&stack.client, ERRORS_FINAL).await, 2);
}

/// Dead letters are recorded in event_errors as the pipeline records them
/// (`Decoder::storage_failed`): a whole body is replayed, a cut one is
/// reported as not replayable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_and_cut_bodies_are_reported() {
    let stack = Stack::new("replay_dead").await;
    stack
        .consumer(&[])
        .await
        .stop(Duration::from_secs(10))
        .await;
    let config = stack.config(&[]);
    let validator = consumer::validator(&config).expect("schemas");

    let session = Uuid::new_v4();
    let whole = serde_json::to_vec(&party_event(1, session)).expect("json");
    let cut = serde_json::to_vec(&party_event(2, session)).expect("json");
    let meta = |sequence| consumer::decode::Meta {
        stream: eye_contract::EVENTS_STREAM.to_owned(),
        sequence,
        delivered: 5,
        received: Timestamp::from_micros(BASE_US + 60_000_000),
    };
    let rows = [
        Decoder::new(validator.clone(), 4096).storage_failed(
            "eye.events.demo.party",
            &whole,
            &meta(1),
            "refused",
        ),
        Decoder::new(validator, 20).storage_failed(
            "eye.events.demo.party",
            &cut,
            &meta(2),
            "refused",
        ),
    ];
    let mut insert = stack
        .client
        .insert::<ErrorRow>("event_errors")
        .await
        .expect("insert");
    for row in &rows {
        insert.write(row).await.expect("write");
    }
    insert.end().await.expect("end");

    let report = run(&config, &["--code", "storage_failed"]).await;
    println!("{report}");
    assert_eq!(report.examined, 2, "{report}");
    assert_eq!(report.stored, 1, "{report}");
    assert_eq!(report.not_replayable["raw_truncated"].count, 1, "{report}");
    assert_eq!(
        report.not_replayable["raw_truncated"].example_reject_id,
        rows[1].reject_id
    );
    let again = run(&config, &["--code", "storage_failed"]).await;
    assert_eq!((again.stored, again.already_stored), (0, 1), "{again}");
    assert_eq!(count(&stack.client, EVENTS_FINAL).await, 1);
    assert_eq!(count(&stack.client, EVENTS_RAW).await, 1);
}
