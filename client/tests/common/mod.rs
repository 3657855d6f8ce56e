//! The real stack for the client's tests: an own `nats-server` (tests stop
//! it, and the gateway and consumer use fixed stream and consumer names), a
//! fresh database on the shared `clickhouse-server`, and the gateway, the
//! consumer and the query service running in this process on free ports,
//! configured with the repository's `deploy/clients.toml` (the demo client).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use eye_client::{
    BatchConfig, Client, ClientBuilder, Event, EventFilter, RetryPolicy, StoredEvent, Timestamp,
    Uuid,
};
use eye_testkit::service::{RunningService, parse_config};
use eye_testkit::{ClickHouseServer, NatsServer};
use futures::TryStreamExt;

/// The demo client's credentials (deploy/clients.toml; local use only).
pub const CLIENT: &str = "demo";
pub const WRITE_KEY: &str = "eye_demo_write_key";
pub const SECRET: &str = "eye_demo_secret";
pub const READ_TOKEN: &str = "eye_demo_read_token";

/// The running parts.
pub struct Stack {
    pub nats: NatsServer,
    pub database: String,
    pub gateway: RunningService<ingest_gateway::GatewayError>,
    pub consumer: RunningService<consumer::ConsumerError>,
    pub query: RunningService<query_service::QueryError>,
}

/// The NATS passwords given to `deploy/nats/local.conf` in [`Stack::start_secured`].
pub const NATS_DEMO_PASSWORD: &str = "test_demo_nats_password";
const GATEWAY_NATS_PASSWORD: &str = "test_gateway_nats_password";
const CONSUMER_NATS_PASSWORD: &str = "test_consumer_nats_password";

/// The stream's byte limit in these tests. The default (8 GiB) is more than
/// nats-server allows JetStream (75% of the free disk) once less than about
/// 11 GB is free, and the streams could not be created at all.
const STREAM_MAX_BYTES: &str = "268435456";

fn clients_file() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/clients.toml")
}

fn repo_file(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

impl Stack {
    /// Starts everything and waits until each service is ready.
    pub async fn start(prefix: &str) -> Stack {
        Stack::start_with(prefix, &[]).await
    }

    /// [`Stack::start`] with extra flags for the gateway.
    pub async fn start_with(prefix: &str, gateway_flags: &[&str]) -> Stack {
        let nats = NatsServer::start().unwrap_or_else(|e| panic!("nats-server: {e}"));
        Stack::start_on(nats, prefix, gateway_flags, &[]).await
    }

    /// [`Stack::start`] with the shipped NATS configuration
    /// (`deploy/nats/local.conf` and its users and permissions): the gateway
    /// and the consumer connect as their users, and [`NATS_DEMO_PASSWORD`]
    /// is the demo client's.
    pub async fn start_secured(prefix: &str) -> Stack {
        let nats = NatsServer::builder()
            .config_file(repo_file("deploy/nats/local.conf"))
            // Overridden by the harness's flags, but the file refers to them.
            .env("EYE_NATS_PORT", "4222")
            .env("EYE_NATS_MONITOR_PORT", "8222")
            .env("EYE_NATS_GATEWAY_PASSWORD", GATEWAY_NATS_PASSWORD)
            .env("EYE_NATS_CONSUMER_PASSWORD", CONSUMER_NATS_PASSWORD)
            .env("EYE_NATS_DEMO_PASSWORD", NATS_DEMO_PASSWORD)
            .start()
            .unwrap_or_else(|e| panic!("nats-server with local.conf: {e}"));
        let gateway = [
            "--nats-user",
            "eye_gateway",
            "--nats-password",
            GATEWAY_NATS_PASSWORD,
        ];
        let consumer = [
            "--nats-user",
            "eye_consumer",
            "--nats-password",
            CONSUMER_NATS_PASSWORD,
        ];
        Stack::start_on(nats, prefix, &gateway, &consumer).await
    }

    async fn start_on(
        nats: NatsServer,
        prefix: &str,
        gateway_flags: &[&str],
        consumer_flags: &[&str],
    ) -> Stack {
        let clickhouse = eye_testkit::shared_clickhouse();
        let database = clickhouse.create_database(prefix).await;
        let schemas = eye_testkit::schemas_dir();
        let schemas = schemas.to_str().expect("utf-8 path");
        let nats_url = nats.url();
        let clickhouse_url = clickhouse.http_url();

        let mut flags = vec![
            "--schemas-dir",
            schemas,
            "--nats-url",
            &nats_url,
            "--stream-max-bytes",
            STREAM_MAX_BYTES,
            "--clickhouse-url",
            &clickhouse_url,
            "--clickhouse-database",
            &database,
            "--batch-wait",
            "50ms",
        ];
        flags.extend_from_slice(consumer_flags);
        let config: consumer::Config = parse_config(&flags);
        let consumer = RunningService::start(|l, s| consumer::run(config, l, s)).await;
        let mut flags = vec![
            "--schemas-dir",
            schemas,
            "--clients-file",
            clients_file(),
            "--nats-url",
            &nats_url,
            "--stream-max-bytes",
            STREAM_MAX_BYTES,
            "--publish-timeout",
            "2s",
        ];
        flags.extend_from_slice(gateway_flags);
        let config: ingest_gateway::Config = parse_config(&flags);
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
            clients_file(),
        ]);
        let query = RunningService::start(|l, s| query_service::run(config, l, s)).await;
        // The consumer is ready once its migrations ran; the query service
        // needs the tables, so it is waited for last.
        let ready = Duration::from_secs(30);
        consumer.wait_for_status("/readyz", 200, ready).await;
        gateway.wait_for_status("/readyz", 200, ready).await;
        query.wait_for_status("/readyz", 200, ready).await;
        Stack {
            nats,
            database,
            gateway,
            consumer,
            query,
        }
    }

    /// A builder for the gateway (no credentials yet) and the query service.
    pub fn builder(&self) -> ClientBuilder {
        Client::builder()
            .gateway_url(self.gateway.url(""))
            .query_url(self.query.url(""))
            .read_token(READ_TOKEN)
            .retry(fast_retries())
    }

    /// A reading-only client.
    pub fn reader(&self) -> Client {
        Client::builder()
            .query_url(self.query.url(""))
            .read_token(READ_TOKEN)
            .build()
            .expect("reader")
    }

    /// Stops the services (the servers die with their handles).
    pub async fn stop(self) {
        let grace = Duration::from_secs(15);
        self.query.stop(grace).await;
        self.gateway.stop(grace).await;
        self.consumer.stop(grace).await;
    }
}

/// Retries quick enough for tests, many enough to ride out a restart.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 60,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        request_timeout: Duration::from_secs(10),
    }
}

/// Batching that sends quickly.
pub fn quick_batches(max_events: usize) -> BatchConfig {
    BatchConfig {
        max_events,
        linger: Duration::from_millis(2),
        ..Default::default()
    }
}

/// Reads `filter` (all pages) until it holds `n` events, failing after 20 s
/// with what it last saw. Returns the events.
pub async fn wait_for_events(reader: &Client, filter: EventFilter, n: usize) -> Vec<StoredEvent> {
    let started = Instant::now();
    loop {
        let events: Vec<StoredEvent> = reader
            .events(filter.clone())
            .try_collect()
            .await
            .expect("read events");
        if events.len() >= n {
            return events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "only {} of {n} events stored after 20 s",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A valid `party` event of `session` at second `n` after 2021-09-26 09:00 UTC.
pub fn party(session: Uuid, n: i64) -> Event {
    let t0 = Timestamp::parse("2021-09-26 09:00:00").expect("time");
    Event::new(
        session,
        "party",
        "AppName",
        Timestamp::from_micros(t0.as_micros() + n * 1_000_000),
    )
    .with_data(serde_json::json!({"host": "www.party.com", "path": format!("/{n}")}))
    .expect("object")
}

/// Waits (at most 30 s) until `client` has had to resend an event.
async fn wait_for_retries(client: &Client) {
    let started = Instant::now();
    while client.stats().retried == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no retry: {:?}",
            client.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every stored event of `session` (all pages).
pub async fn session_events(reader: &Client, session: Uuid) -> Vec<StoredEvent> {
    reader
        .events(EventFilter::default().session(session).page_size(1000))
        .try_collect()
        .await
        .expect("read events")
}

/// Sends one new event of `session` (second 1000) through the gateway and
/// waits until it is readable. The consumer stores in stream order, so once
/// the sentinel is there, every copy published before it has been processed:
/// counting then proves there is no duplicate, without a fixed sleep.
pub async fn sentinel(stack: &Stack, session: Uuid) {
    let gateway = stack
        .builder()
        .write_key(WRITE_KEY)
        .build()
        .expect("gateway client");
    gateway
        .send(party(session, 1000))
        .await
        .expect("queued")
        .await
        .expect("sentinel accepted");
    gateway.close().await.expect("close");
    let reader = stack.reader();
    let started = Instant::now();
    loop {
        let events: Vec<_> = reader
            .events(
                EventFilter::default()
                    .session(session)
                    .from(party(session, 1000).timestamp),
            )
            .try_collect()
            .await
            .expect("read");
        if !events.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no sentinel");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How NATS goes away in [`send_across_outage`].
#[derive(Debug, Clone, Copy)]
pub enum Outage {
    /// SIGTERM, a clean stop.
    Stop,
    /// SIGKILL, like a crash.
    Kill,
}

/// Sends event 0 of `session` (accepted), takes NATS down, sends events
/// `1..=n`, waits until the client is retrying, brings NATS back on the same
/// port and store, and checks that every event is then accepted.
pub async fn send_across_outage(
    stack: &mut Stack,
    client: &Client,
    session: Uuid,
    n: i64,
    outage: Outage,
) {
    client
        .send(party(session, 0))
        .await
        .expect("queued")
        .await
        .expect("accepted before the outage");
    match outage {
        Outage::Stop => stack.nats.stop(),
        Outage::Kill => stack.nats.kill(),
    }
    .expect("take NATS down");
    let mut receipts = Vec::new();
    for i in 1..=n {
        receipts.push(client.send(party(session, i)).await.expect("queued"));
    }
    wait_for_retries(client).await;
    stack.nats.start_again().expect("restart nats");
    for receipt in receipts {
        receipt.await.expect("accepted after retries");
    }
    eprintln!("across a NATS outage ({outage:?}): {:?}", client.stats());
}
