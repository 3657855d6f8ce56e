//! The query service's operations endpoints against a real ClickHouse server.

use std::time::Duration;

use eye_testkit::service::{parse_config, RunningService};
use query_service::Config;

fn clients_file() -> String {
    format!("{}/../deploy/clients.toml", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn ready_when_clickhouse_answers_and_not_when_it_does_not() {
    let clickhouse = eye_testkit::shared_clickhouse();
    let clients = clients_file();
    let config: Config = parse_config(&[
        "--clients-file",
        &clients,
        "--clickhouse-url",
        &clickhouse.http_url(),
        "--clickhouse-database",
        "default",
    ]);
    let query =
        RunningService::start(|listener, shutdown| query_service::run(config, listener, shutdown))
            .await;
    query
        .wait_for_status("/readyz", 200, Duration::from_secs(10))
        .await;
    let metrics = reqwest::get(query.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("eye_query_build_info"),
        "metrics: {metrics}"
    );
    query.stop(Duration::from_secs(5)).await;

    let closed = eye_testkit::closed_port();
    let url = format!("http://127.0.0.1:{closed}");
    let config: Config = parse_config(&["--clients-file", &clients, "--clickhouse-url", &url]);
    let query =
        RunningService::start(|listener, shutdown| query_service::run(config, listener, shutdown))
            .await;
    let response = reqwest::get(query.url("/readyz")).await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    query.stop(Duration::from_secs(5)).await;
}
