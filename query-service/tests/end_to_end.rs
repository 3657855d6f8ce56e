//! The README's example, through every part: the example event posted to the
//! real gateway, carried by NATS JetStream, stored by the consumer, and read
//! back with the README's `curl` (the demo read token) from the query service
//! running as the read-only ClickHouse user.

mod common;

use std::time::{Duration, Instant};

use eye_testkit::service::{parse_config, RunningService};
use serde_json::json;

const SESSION: &str = "e2085be5-9137-4e4e-80b5-f1ffddc25423";
const README_EVENT: &str = r#"{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "party",
       "name": "AppName", "data": {"host": "www.party.com", "path": "/"},
       "timestamp": "2021-09-26 09:15:27.243860"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_shows_the_example_session() {
    let nats = eye_testkit::NatsServer::start().unwrap_or_else(|e| panic!("nats-server: {e}"));
    let clickhouse = eye_testkit::shared_clickhouse();
    let (database, _writer) = common::database("q_e2e").await;
    let clients = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/clients.toml");
    let schemas = eye_testkit::schemas_dir();
    let schemas = schemas.to_str().expect("utf-8");
    let nats_url = nats.url();
    let clickhouse_url = clickhouse.http_url();

    let config: consumer::Config = parse_config(&[
        "--schemas-dir",
        schemas,
        "--nats-url",
        &nats_url,
        "--clickhouse-url",
        &clickhouse_url,
        "--clickhouse-database",
        &database,
        "--batch-wait",
        "50ms",
    ]);
    let consumer = RunningService::start(|l, s| consumer::run(config, l, s)).await;
    let config: ingest_gateway::Config = parse_config(&[
        "--schemas-dir",
        schemas,
        "--clients-file",
        clients,
        "--nats-url",
        &nats_url,
    ]);
    let gateway = RunningService::start(|l, s| ingest_gateway::run(config, l, s)).await;
    let config = common::reader_config(&clickhouse_url, &database, clients, &[]);
    let query = RunningService::start(|l, s| query_service::run(config, l, s)).await;
    for service in [&consumer.addr, &gateway.addr, &query.addr] {
        let url = format!("http://{service}/readyz");
        let started = Instant::now();
        while reqwest::get(&url).await.map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{url} not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

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

    // The README's curl, until the event is there.
    let body = loop {
        let body: serde_json::Value = http
            .get(query.url(&format!("/v1/sessions/{SESSION}/events")))
            .bearer_auth("eye_demo_read_token")
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        if body["events"].as_array().is_some_and(|e| !e.is_empty()) {
            break body;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "not readable: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "README event readable {:?} after it was sent",
        sent.elapsed()
    );
    let event = &body["events"][0];
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(event["session_id"], SESSION);
    assert_eq!(event["category"], "party");
    assert_eq!(event["name"], "AppName");
    assert_eq!(event["data"], json!({"host": "www.party.com", "path": "/"}));
    assert_eq!(event["timestamp"], "2021-09-26T09:15:27.243860Z");
    assert_eq!(event["client_id"], "demo");
    assert_eq!(body["next_cursor"], serde_json::Value::Null);

    query.stop(Duration::from_secs(10)).await;
    gateway.stop(Duration::from_secs(10)).await;
    consumer.stop(Duration::from_secs(10)).await;
}
