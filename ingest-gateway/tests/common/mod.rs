//! What the gateway's integration tests share: a gateway with a client of its
//! own (so tests sharing a NATS server never see each other's events), HTTP
//! helpers and readers of the streams.

#![allow(dead_code)] // Each test binary uses a different part.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use eye_testkit::service::{parse_config, RunningService};
use futures::StreamExt;
use ingest_gateway::{Config, GatewayError};
use serde_json::Value;

/// A running gateway and the client registered for this test alone.
pub struct Gateway {
    pub service: RunningService<GatewayError>,
    /// The test's client id (and so its subject token).
    pub client: String,
    /// The client's write key.
    pub key: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Starts a gateway on `nats_url` with `extra` flags, and waits until it is ready.
pub async fn start(nats_url: &str, extra: &[&str]) -> Gateway {
    let gateway = start_unready(nats_url, extra).await;
    gateway
        .service
        .wait_for_status("/readyz", 200, Duration::from_secs(20))
        .await;
    gateway
}

/// Starts a gateway without waiting for it to be ready (NATS may be down).
pub async fn start_unready(nats_url: &str, extra: &[&str]) -> Gateway {
    let client = eye_testkit::unique_name("client");
    let key = eye_testkit::unique_name("key");
    let dir = tempfile::tempdir().expect("temp dir");
    let clients_file = dir.path().join("clients.toml");
    std::fs::write(
        &clients_file,
        format!("[[clients]]\nid = \"{client}\"\nwrite_keys = [{{ key = \"{key}\" }}]\n"),
    )
    .expect("write clients file");
    let schemas = eye_testkit::schemas_dir();
    let mut args = vec![
        "--schemas-dir",
        schemas.to_str().expect("utf-8 path"),
        "--clients-file",
        clients_file.to_str().expect("utf-8 path"),
        "--nats-url",
        nats_url,
    ];
    args.extend_from_slice(extra);
    let config: Config = parse_config(&args);
    let service =
        RunningService::start(|listener, shutdown| ingest_gateway::run(config, listener, shutdown))
            .await;
    service
        .wait_for_status("/healthz", 200, Duration::from_secs(10))
        .await;
    Gateway {
        service,
        client,
        key,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// An HTTP answer, read completely.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Gateway {
    /// `POST path` with the client's key, `content_type` and `body` (and `gzip`
    /// as Content-Encoding when asked).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        gzip: bool,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .http
            .post(self.service.url(path))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body);
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        answer(request.send().await.expect("request sent")).await
    }

    /// `POST /v1/events` of a JSON value.
    pub async fn send(&self, body: &Value) -> Answer {
        self.post_raw(
            "/v1/events",
            "application/json",
            false,
            body.to_string().into_bytes(),
        )
        .await
    }

    /// A GET without credentials.
    pub async fn get(&self, path: &str) -> Answer {
        answer(
            self.http
                .get(self.service.url(path))
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// `eye.events.<client>.>`
    pub fn events_filter(&self) -> String {
        format!("eye.events.{}.>", self.client)
    }

    /// `eye.rejects.<client>`
    pub fn rejects_filter(&self) -> String {
        format!("eye.rejects.{}", self.client)
    }

    /// The value of a metric line starting with `series` (name and labels).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .http
            .get(self.service.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        content_type,
        retry_after,
        body,
    }
}

/// The canonical example event, with `/<n>` as its path so events differ.
pub fn party(n: usize) -> Value {
    serde_json::json!({"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "party",
           "name": "AppName", "data": {"host": "www.party.com", "path": format!("/{n}")},
           "timestamp": "2021-09-26 09:15:27.243860"})
}

/// A file of `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every message of `stream` on subjects matching `filter`, read with an
/// ephemeral consumer.
pub async fn messages(
    nats: &async_nats::Client,
    stream: &str,
    filter: &str,
) -> Vec<jetstream::Message> {
    let js = jetstream::new(nats.clone());
    let stream = js.get_stream(stream).await.expect("stream exists");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: filter.to_owned(),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut out = Vec::new();
    let mut batch = consumer
        .fetch()
        .max_messages(100_000)
        .messages()
        .await
        .expect("fetch");
    while let Some(message) = batch.next().await {
        out.push(message.expect("message"));
    }
    out
}

/// Waits until `stream` holds `count` messages matching `filter` (or fails after `deadline`).
pub async fn wait_for_messages(
    nats: &async_nats::Client,
    stream: &str,
    filter: &str,
    count: usize,
    deadline: Duration,
) -> Vec<jetstream::Message> {
    let started = Instant::now();
    loop {
        let found = messages(nats, stream, filter).await;
        if found.len() >= count || started.elapsed() > deadline {
            assert_eq!(found.len(), count, "messages on {filter} in {stream}");
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The header `name` of a stream message.
pub fn header(message: &jetstream::Message, name: &str) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}
