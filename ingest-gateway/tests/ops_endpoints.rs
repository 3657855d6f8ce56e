//! The gateway's operations endpoints against a real NATS server.

use std::time::Duration;

use eye_testkit::service::{parse_config, RunningService};
use ingest_gateway::Config;

#[tokio::test]
async fn healthy_ready_with_metrics_and_stops_on_shutdown() {
    let nats = eye_testkit::shared_nats();
    let schemas = eye_testkit::schemas_dir();
    let config: Config = parse_config(&[
        "--schemas-dir",
        schemas.to_str().unwrap(),
        "--nats-url",
        &nats.url(),
    ]);
    let gateway =
        RunningService::start(|listener, shutdown| ingest_gateway::run(config, listener, shutdown))
            .await;

    gateway
        .wait_for_status("/healthz", 200, Duration::from_secs(5))
        .await;
    gateway
        .wait_for_status("/readyz", 200, Duration::from_secs(10))
        .await;
    let metrics = reqwest::get(gateway.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("eye_gateway_build_info"),
        "metrics: {metrics}"
    );

    gateway.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn alive_but_not_ready_while_nats_is_unreachable() {
    let closed = eye_testkit::closed_port();
    let schemas = eye_testkit::schemas_dir();
    let config: Config = parse_config(&[
        "--schemas-dir",
        schemas.to_str().unwrap(),
        "--nats-url",
        &format!("nats://127.0.0.1:{closed}"),
    ]);
    let gateway =
        RunningService::start(|listener, shutdown| ingest_gateway::run(config, listener, shutdown))
            .await;

    gateway
        .wait_for_status("/healthz", 200, Duration::from_secs(5))
        .await;
    let response = reqwest::get(gateway.url("/readyz")).await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"][0]["name"], "nats");

    gateway.stop(Duration::from_secs(5)).await;
}
