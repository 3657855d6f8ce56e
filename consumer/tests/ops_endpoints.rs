//! The consumer's operations endpoints against real NATS and ClickHouse servers.

mod common;

use std::time::Duration;

use consumer::Config;
use eye_testkit::service::{parse_config, RunningService};

#[tokio::test]
async fn ready_when_nats_and_clickhouse_answer() {
    let nats = eye_testkit::shared_nats();
    let clickhouse = eye_testkit::shared_clickhouse();
    let schemas = eye_testkit::schemas_dir();
    // The consumer creates its database and applies the migrations itself.
    let database = eye_testkit::unique_name("ops");
    let config: Config = parse_config(&[
        "--schemas-dir",
        schemas.to_str().unwrap(),
        "--nats-url",
        &nats.url(),
        "--clickhouse-url",
        &clickhouse.http_url(),
        "--clickhouse-database",
        &database,
    ]);
    let consumer =
        RunningService::start(|listener, shutdown| consumer::run(config, listener, shutdown)).await;

    consumer
        .wait_for_status("/readyz", 200, Duration::from_secs(10))
        .await;
    let metrics = reqwest::get(consumer.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("eye_consumer_build_info"),
        "metrics: {metrics}"
    );

    consumer.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn not_ready_names_clickhouse_when_it_is_unreachable() {
    let nats = eye_testkit::shared_nats();
    let closed = eye_testkit::closed_port();
    let schemas = eye_testkit::schemas_dir();
    let config: Config = parse_config(&[
        "--schemas-dir",
        schemas.to_str().unwrap(),
        "--nats-url",
        &nats.url(),
        "--clickhouse-url",
        &format!("http://127.0.0.1:{closed}"),
    ]);
    let consumer =
        RunningService::start(|listener, shutdown| consumer::run(config, listener, shutdown)).await;

    consumer
        .wait_for_status("/healthz", 200, Duration::from_secs(5))
        .await;
    // NATS connects in the background: wait until it is the only one that answers.
    let expected = ["clickhouse", "pipeline"];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let failing = loop {
        let response = reqwest::get(consumer.url("/readyz")).await.unwrap();
        assert_eq!(response.status().as_u16(), 503);
        let body: serde_json::Value = response.json().await.unwrap();
        let failing: Vec<String> = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|check| check["ok"] == false)
            .map(|check| check["name"].as_str().unwrap().to_owned())
            .collect();
        if failing == expected || std::time::Instant::now() > deadline {
            break failing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The pipeline is not ready either: it cannot apply its schema.
    assert_eq!(failing, expected);

    consumer.stop(Duration::from_secs(5)).await;
}

/// A NATS server without room for the stream limits: the consumer stays
/// unready, and `/readyz` and `/status` say why (it keeps trying).
#[tokio::test]
async fn not_ready_while_jetstream_cannot_reserve_the_streams() {
    let nats = eye_testkit::NatsServer::builder()
        .max_file_store("64MB")
        .start()
        .expect("nats-server");
    let clickhouse = eye_testkit::shared_clickhouse();
    let database = eye_testkit::unique_name("ops_storage");
    let config = common::config(
        &nats.url(),
        &clickhouse.http_url(),
        &database,
        &["--stream-max-bytes", "1073741824"],
    );
    let consumer =
        RunningService::start(|listener, shutdown| consumer::run(config, listener, shutdown)).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let body = loop {
        let response = reqwest::get(consumer.url("/readyz")).await.unwrap();
        assert_eq!(response.status().as_u16(), 503);
        let body = response.text().await.unwrap();
        if body.contains("JetStream set-up pending: ") {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains("insufficient storage resources"), "{body}");
    assert!(body.contains("EYE_STREAM_MAX_BYTES"), "{body}");
    let status: serde_json::Value = reqwest::get(consumer.url("/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["jetstream_ready"], false, "{status}");
    assert!(
        status["jetstream_error"]
            .as_str()
            .is_some_and(|e| e.contains("1073741824 bytes")),
        "{status}"
    );

    consumer.stop(Duration::from_secs(5)).await;
}
