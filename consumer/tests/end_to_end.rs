//! The whole write path in one process: the README's example event sent to
//! the real gateway over HTTP is a row in `events` within a second, and an
//! event the gateway rejects is a row in `event_errors` (source `gateway`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use eye_testkit::service::{parse_config, RunningService};
use serde_json::json;

const README_EVENT: &str = r#"{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "party",
       "name": "AppName", "data": {"host": "www.party.com", "path": "/"},
       "timestamp": "2021-09-26 09:15:27.243860"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_event_is_a_row_within_a_second() {
    let stack = Stack::new("e2e").await;
    let consumer = stack.consumer(&[]).await;
    let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/clients.toml");
    let schemas = eye_testkit::schemas_dir();
    let nats_url = stack.nats.url();
    let config: ingest_gateway::Config = parse_config(&[
        "--schemas-dir",
        schemas.to_str().expect("utf-8"),
        "--clients-file",
        clients.to_str().expect("utf-8"),
        "--nats-url",
        &nats_url,
    ]);
    let gateway =
        RunningService::start(|listener, shutdown| ingest_gateway::run(config, listener, shutdown))
            .await;
    gateway
        .wait_for_status("/readyz", 200, Duration::from_secs(20))
        .await;

    let http = reqwest::Client::new();
    let sent = Instant::now();
    let answer = http
        .post(gateway.url("/v1/events"))
        .bearer_auth("eye_demo_write_key")
        .header("content-type", "application/json")
        .body(README_EVENT)
        .send()
        .await
        .expect("POST /v1/events");
    assert_eq!(answer.status().as_u16(), 202);
    wait_for("the row", Duration::from_secs(1), || async {
        let n = stack
            .client
            .query("SELECT count() FROM events FINAL WHERE session_id = toUUID('e2085be5-9137-4e4e-80b5-f1ffddc25423')")
            .fetch_one::<u64>()
            .await
            .map_err(|e| e.to_string())?;
        if n == 1 { Ok(()) } else { Err(format!("{n} rows")) }
    })
    .await;
    eprintln!("README event stored {:?} after it was sent", sent.elapsed());
    let (client_id, timestamp_us): (String, i64) = stack
        .client
        .query("SELECT client_id, timestamp_us FROM events FINAL")
        .fetch_one()
        .await
        .expect("row");
    assert_eq!(client_id, "demo");
    assert_eq!(timestamp_us, BASE_US);

    // A rejected event travels EYE_REJECTS into event_errors.
    let mut bad: serde_json::Value = serde_json::from_str(README_EVENT).expect("json");
    bad["session_id"] = json!("not-a-uuid");
    let answer = http
        .post(gateway.url("/v1/events"))
        .bearer_auth("eye_demo_write_key")
        .json(&bad)
        .send()
        .await
        .expect("POST /v1/events");
    assert_eq!(answer.status().as_u16(), 422);
    wait_for_count(&stack.client, "SELECT count() FROM event_errors FINAL WHERE source = 'gateway' AND code = 'invalid_session_id' AND client_id = 'demo'", 1).await;

    gateway.stop(Duration::from_secs(10)).await;
    consumer.stop(Duration::from_secs(10)).await;
}
