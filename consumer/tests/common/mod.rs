//! Helpers of the consumer's integration tests: configuration, publishing,
//! waiting with a deadline, and reading ClickHouse the way readers do.
#![allow(dead_code, missing_docs)]

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use consumer::{Config, ConsumerError};
use eye_contract::{events_subject, Timestamp};
use eye_server_kit::jetstream::StreamArgs;
use eye_testkit::service::{parse_config, RunningService};
use serde_json::{json, Value};
use uuid::Uuid;

/// 2021-09-26T09:15:27.243860Z, the design's example time.
pub const BASE_US: i64 = 1_632_647_727_243_860;

/// A consumer configuration for tests: short batch wait, fast lag polls and
/// retries; `extra` overrides or adds flags.
pub fn config(nats_url: &str, clickhouse_url: &str, database: &str, extra: &[&str]) -> Config {
    let schemas = eye_testkit::schemas_dir();
    let mut args = vec![
        "--schemas-dir",
        schemas.to_str().expect("utf-8 path"),
        "--nats-url",
        nats_url,
        "--clickhouse-url",
        clickhouse_url,
        "--clickhouse-database",
        database,
        "--batch-wait",
        "50ms",
        "--lag-poll-interval",
        "200ms",
        "--retry-max",
        "500ms",
        "--shutdown-grace-secs",
        "5",
    ];
    args.extend_from_slice(extra);
    parse_config(&args)
}

/// Starts a consumer in this process.
pub async fn start(config: Config) -> RunningService<ConsumerError> {
    RunningService::start(|listener, shutdown| consumer::run(config, listener, shutdown)).await
}

/// Creates the three streams as the services do.
pub async fn streams(nats: &async_nats::Client) -> jetstream::Context {
    let js = jetstream::new(nats.clone());
    eye_server_kit::jetstream::create_or_update_streams(&js, &parse_config::<StreamArgs>(&[]))
        .await
        .expect("create streams");
    js
}

/// Publishes every `(subject, body)` to JetStream and waits for all acks.
pub async fn publish(js: &jetstream::Context, messages: Vec<(String, Vec<u8>)>) {
    for chunk in messages.chunks(1000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (subject, body) in chunk {
            acks.push(
                js.publish(subject.clone(), body.clone().into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in acks {
            ack.await.expect("JetStream ack");
        }
    }
}

/// The `i`-th test event of `session`: category party, unicode data, a
/// distinct microsecond time, alternating the two timestamp spellings.
pub fn party_event(i: u32, session: Uuid) -> Value {
    let ts = Timestamp::from_micros(BASE_US + i64::from(i) * 1_000_003);
    let rfc = ts.to_rfc3339();
    let timestamp = if i.is_multiple_of(2) {
        rfc
    } else {
        // Native format: space separator, no zone (UTC).
        rfc.replace('T', " ").trim_end_matches('Z').to_owned()
    };
    json!({
        "session_id": session.to_string(),
        "category": "party",
        "name": "AppName",
        "data": {"host": "www.ünïcödé.example", "path": format!("/日本語/{i}/✓🎉 \"q\" \\ é")},
        "timestamp": timestamp,
    })
}

/// `(subject, body)` of `event` published by `client`.
pub fn message(client: &str, event: &Value) -> (String, Vec<u8>) {
    let category = event["category"].as_str().unwrap_or("party");
    (
        events_subject(client, category),
        serde_json::to_vec(event).expect("json"),
    )
}

/// Polls `probe` every 50 ms until it gives `Some`, failing after `deadline`
/// with `what` and the last value seen.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if started.elapsed() > deadline => {
                panic!("{what}: not reached within {deadline:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `SELECT count() ...` as a number.
pub async fn count(client: &clickhouse::Client, sql: &str) -> u64 {
    client
        .query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// Waits (at most a minute) until `sql` counts exactly `expected`.
pub async fn wait_for_count(client: &clickhouse::Client, sql: &str, expected: u64) {
    wait_for(sql, Duration::from_secs(60), || async {
        let n = client
            .query(sql)
            .fetch_one::<u64>()
            .await
            .map_err(|e| e.to_string())?;
        if n == expected {
            Ok(())
        } else {
            Err(format!("{n} (want {expected})"))
        }
    })
    .await
}

/// The consumer's `/status`.
pub async fn status(service: &RunningService<ConsumerError>) -> Value {
    reqwest::get(service.url("/status"))
        .await
        .expect("GET /status")
        .json()
        .await
        .expect("/status JSON")
}

/// The value of a metric line starting with `name` in `/metrics`, or 0.
pub async fn metric(service: &RunningService<ConsumerError>, name: &str) -> f64 {
    let text = reqwest::get(service.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The durable events consumer's info.
pub async fn consumer_info(js: &jetstream::Context) -> jetstream::consumer::Info {
    let stream = js
        .get_stream(eye_contract::EVENTS_STREAM)
        .await
        .expect("events stream");
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer("eye-consumer")
        .await
        .expect("durable consumer");
    consumer.info().await.expect("consumer info").clone()
}

/// A test's own nats-server with the streams, and its own database on a
/// ClickHouse server.
pub struct Stack {
    pub nats: eye_testkit::NatsServer,
    pub js: jetstream::Context,
    pub clickhouse_url: String,
    pub database: String,
    /// User `default` in the test's database.
    pub client: clickhouse::Client,
}

impl Stack {
    /// A fresh nats-server and a database named after `prefix` on the
    /// binary's shared ClickHouse (created by the consumer's migrations).
    pub async fn new(prefix: &str) -> Stack {
        Stack::on(eye_testkit::shared_clickhouse(), prefix).await
    }

    /// The same on a given ClickHouse server.
    pub async fn on(clickhouse: &eye_testkit::ClickHouseServer, prefix: &str) -> Stack {
        let nats =
            eye_testkit::NatsServer::start().unwrap_or_else(|error| panic!("nats-server: {error}"));
        let js = streams(&nats.connect().await).await;
        let database = eye_testkit::unique_name(prefix);
        Stack {
            js,
            clickhouse_url: clickhouse.http_url(),
            client: clickhouse.client(&database),
            database,
            nats,
        }
    }

    /// The test configuration with `extra` flags.
    pub fn config(&self, extra: &[&str]) -> Config {
        config(
            &self.nats.url(),
            &self.clickhouse_url,
            &self.database,
            extra,
        )
    }

    /// Starts a consumer and waits until it is ready (schema applied).
    pub async fn consumer(&self, extra: &[&str]) -> RunningService<ConsumerError> {
        let service = start(self.config(extra)).await;
        service
            .wait_for_status("/readyz", 200, Duration::from_secs(20))
            .await;
        service
    }

    /// Waits until `events` holds at least one row (copies included).
    pub async fn wait_for_first_rows(&self) {
        wait_for("first rows", Duration::from_secs(20), || async {
            let n = self
                .client
                .query("SELECT count() FROM events")
                .fetch_one::<u64>()
                .await
                .map_err(|e| e.to_string())?;
            if n > 0 {
                Ok(())
            } else {
                Err("no rows yet".into())
            }
        })
        .await
    }
}
