//! A smoke run of every eye-bench scenario, so the benchmark does not rot: the
//! whole stack (real nats-server and clickhouse-server from the test kit, the
//! gateway, the consumer and the query service in this process), the smoke
//! plan (tiny counts, a few seconds each), and checks that every scenario
//! produced its figures and found what it sent. No assertion on speed: the
//! benchmark, not the test suite, is the place for speed.

use std::time::{Duration, Instant};

use clap::Parser;
use eye_bench::Config;
use eye_testkit::service::{parse_config, RunningService};
use eye_testkit::ClickHouseServer;

/// The figures of issue 8's results.json, all of which a smoke run must produce.
const REQUIRED: [&str; 13] = [
    "jetstream_publish_ceiling_per_s",
    "clickhouse_insert_ceiling_rows_per_s",
    "batched_accepted_events_per_s",
    "batched_stored_events_per_s",
    "single_event_requests_per_s",
    "single_event_p99_ms",
    "gateway_p99_ms_at_5k",
    "e2e_p99_ms_at_5k",
    "session_query_p99_ms",
    "category_hour_query_p99_ms",
    "gateway_rss_mb",
    "consumer_rss_mb",
    "query_rss_mb",
];

/// The streams' byte limit: JetStream reserves it on disk up front, and the
/// 8 GiB default does not fit when the disk has less than ~11 GB free.
const STREAM_BYTES: &str = "268435456";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_on_a_small_scale() {
    let nats = eye_testkit::shared_nats();
    let clickhouse = eye_testkit::shared_clickhouse();
    let database = clickhouse.create_database("bench_smoke").await;
    let clients = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/clients.toml");
    let schemas = eye_testkit::schemas_dir();
    let schemas = schemas.to_str().expect("utf-8 path");
    let (nats_url, clickhouse_url) = (nats.url(), clickhouse.http_url());
    // The stream names are fixed by the contract: this is the only test of
    // its binary, so the shared nats-server holds this stack's streams only.
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
        "--stream-max-bytes",
        STREAM_BYTES,
    ]);
    let consumer = RunningService::start(|l, s| consumer::run(config, l, s)).await;
    let config: ingest_gateway::Config = parse_config(&[
        "--schemas-dir",
        schemas,
        "--clients-file",
        clients,
        "--nats-url",
        &nats_url,
        "--stream-max-bytes",
        STREAM_BYTES,
    ]);
    let gateway = RunningService::start(|l, s| ingest_gateway::run(config, l, s)).await;
    let config: query_service::Config = parse_config(&[
        "--clickhouse-url",
        &clickhouse_url,
        "--clickhouse-database",
        &database,
        "--clickhouse-user",
        ClickHouseServer::READER_USER,
        "--clickhouse-password",
        ClickHouseServer::READER_PASSWORD,
        "--clients-file",
        clients,
    ]);
    let query = RunningService::start(|l, s| query_service::run(config, l, s)).await;
    let ready = Duration::from_secs(30);
    consumer.wait_for_status("/readyz", 200, ready).await;
    gateway.wait_for_status("/readyz", 200, ready).await;
    query.wait_for_status("/readyz", 200, ready).await;

    // The services run in this process: its pid stands for all three.
    let pid = std::process::id().to_string();
    let config = Config::parse_from([
        "eye-bench",
        "--scale",
        "smoke",
        "--gateway-url",
        &gateway.url(""),
        "--query-url",
        &query.url(""),
        "--consumer-url",
        &consumer.url(""),
        "--nats-url",
        &nats_url,
        "--clickhouse-url",
        &clickhouse_url,
        "--clickhouse-database",
        &database,
        "--pid",
        &format!("gateway={pid}"),
        "--pid",
        &format!("consumer={pid}"),
        "--pid",
        &format!("query={pid}"),
        "--git-commit",
        "smoke-test",
    ]);
    let started = Instant::now();
    let results = eye_bench::run(config).await;
    let took = started.elapsed();
    println!("{}\n(smoke run in {took:?})", results.table());

    assert!(
        results.errors().is_empty(),
        "problems: {:#?}",
        results.errors()
    );
    for key in REQUIRED {
        let value = results.get(key).unwrap_or_else(|| panic!("{key} missing"));
        assert!(value.is_finite() && value >= 0.0, "{key} = {value}");
    }
    // What was sent was found: everything accepted was stored (the scenario
    // waits for that), invalid events were rejected, reads returned rows.
    let accepted = results.get("batched_accepted_events").unwrap_or(0.0);
    assert!(accepted > 0.0, "nothing accepted");
    assert!(
        results.get("batched_rejected_events").unwrap_or(0.0) < accepted,
        "mostly rejects"
    );
    assert!(results.get("e2e_samples").unwrap_or(0.0) >= 1.0);
    assert_eq!(results.get("session_query_empty_answers"), Some(0.0));
    assert!(results.get("stored_events").unwrap_or(0.0) >= 20_000.0);
    let json = results.to_json();
    assert_eq!(json["git_commit"], "smoke-test");
    assert!(json["machine"]["cores"].as_u64().unwrap_or(0) >= 1);

    let grace = Duration::from_secs(20);
    gateway.stop(grace).await;
    query.stop(grace).await;
    consumer.stop(grace).await;
}
