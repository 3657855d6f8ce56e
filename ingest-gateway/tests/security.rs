//! Authentication, CORS, rate limits and category allow-lists of a real
//! gateway on a real NATS server (docs/security.md).

use std::time::{Duration, Instant};

use eye_contract::EVENTS_STREAM;
use eye_server_kit::signature;
use eye_testkit::service::{parse_config, RunningService};
use ingest_gateway::{Config, GatewayError};
use serde_json::{json, Value};

struct Gw {
    service: RunningService<GatewayError>,
    client: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

const SECRET_OLD: &str = "sec_test_secret_old";
const SECRET_NEW: &str = "sec_test_secret_new";
const KEY: &str = "sec_test_write_key";
const ORIGIN: &str = "https://shop.example.com";

/// A gateway whose only client has two secrets, a write key for ORIGIN, and
/// `extra` TOML lines (rate limit, categories).
async fn gateway(extra: &str) -> Gw {
    let client = eye_testkit::unique_name("sec");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("clients.toml");
    std::fs::write(
        &file,
        format!(
            "[[clients]]\nid = \"{client}\"\n{extra}\n\
             write_keys = [{{ key = \"{KEY}-{client}\", allowed_origins = [\"{ORIGIN}\"] }}]\n\
             hmac_secrets = [{{ secret = \"{SECRET_OLD}\" }}, {{ secret = \"{SECRET_NEW}\" }}]\n"
        ),
    )
    .expect("clients file");
    let nats = eye_testkit::shared_nats().url();
    let schemas = eye_testkit::schemas_dir();
    let config: Config = parse_config(&[
        "--schemas-dir",
        schemas.to_str().expect("utf-8"),
        "--clients-file",
        file.to_str().expect("utf-8"),
        "--nats-url",
        &nats,
        // JetStream reserves the byte limit on disk; 1 GiB fits any test machine.
        "--stream-max-bytes",
        "1073741824",
    ]);
    let service =
        RunningService::start(|listener, shutdown| ingest_gateway::run(config, listener, shutdown))
            .await;
    service
        .wait_for_status("/readyz", 200, Duration::from_secs(20))
        .await;
    Gw {
        service,
        client,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

fn event(n: usize, category: &str) -> Value {
    json!({"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": category,
           "name": "AppName", "data": {"host": "www.party.com", "path": format!("/{n}")},
           "timestamp": "2021-09-26 09:15:27.243860"})
}

fn now() -> i64 {
    ingest_gateway::auth::unix_now()
}

impl Gw {
    fn key(&self) -> String {
        format!("{KEY}-{}", self.client)
    }

    async fn signed(&self, secret: &str, timestamp: i64, body: &[u8], sent: &[u8]) -> (u16, Value) {
        self.signed_as("application/json", secret, timestamp, body, sent)
            .await
    }

    /// A request signed with `secret` over `body` at `timestamp`, sending `sent`.
    async fn signed_as(
        &self,
        content_type: &str,
        secret: &str,
        timestamp: i64,
        body: &[u8],
        sent: &[u8],
    ) -> (u16, Value) {
        let ts = timestamp.to_string();
        let response = self
            .http
            .post(self.service.url("/v1/events"))
            .header("content-type", content_type)
            .header("x-eye-client", &self.client)
            .header("x-eye-timestamp", &ts)
            .header(
                "x-eye-signature",
                signature::sign(secret.as_bytes(), &ts, body),
            )
            .body(sent.to_vec())
            .send()
            .await
            .expect("sent");
        read(response).await
    }

    async fn stored(&self) -> u64 {
        let nats = eye_testkit::shared_nats().connect().await;
        let js = async_nats::jetstream::new(nats);
        let stream = js.get_stream(EVENTS_STREAM).await.expect("stream");
        let subject = format!("eye.events.{}.>", self.client);
        let found = stream.info_with_subjects(subject).await.expect("subjects");
        use futures::TryStreamExt;
        let counts: Vec<(String, usize)> = found.try_collect().await.expect("subject counts");
        counts.iter().map(|(_, n)| *n as u64).sum()
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn signatures_windows_replays_and_altered_bodies() {
    let gw = gateway("").await;
    let body = event(1, "party").to_string().into_bytes();
    let (status, answer) = gw.signed(SECRET_OLD, now(), &body, &body).await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = gw.signed(SECRET_NEW, now(), &body, &body).await;
    assert_eq!(status, 202, "both secrets of a rotation work: {answer}");
    // The same signed request replayed inside the window is accepted again and
    // stored once (same event id, JetStream deduplicates).
    let ts = now();
    for _ in 0..2 {
        let (status, _) = gw.signed(SECRET_OLD, ts, &body, &body).await;
        assert_eq!(status, 202);
    }
    assert_eq!(gw.stored().await, 1, "one event however often it was sent");

    let (status, answer) = gw.signed("not_the_secret", now(), &body, &body).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = gw.signed(SECRET_OLD, now() - 301, &body, &body).await;
    assert_eq!(status, 401, "expired: {answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("behind")),
        "{answer}"
    );
    let (status, answer) = gw.signed(SECRET_OLD, now() + 301, &body, &body).await;
    assert_eq!(status, 401, "future: {answer}");
    let altered = event(2, "party").to_string().into_bytes();
    let (status, answer) = gw.signed(SECRET_OLD, now(), &body, &altered).await;
    assert_eq!(status, 401, "altered after signing: {answer}");
    let text = answer.to_string();
    assert!(
        !text.contains(SECRET_OLD) && !text.contains(&gw.key()),
        "{text}"
    );
    assert_eq!(gw.stored().await, 1, "nothing refused was stored");

    // A signed sender may not send text/plain (that is for write keys only).
    let (status, answer) = gw
        .signed_as("text/plain", SECRET_OLD, now(), &body, &body)
        .await;
    assert_eq!(status, 415, "{answer}");
}

#[tokio::test]
async fn browsers_origins_preflights_and_beacons() {
    let gw = gateway("").await;
    let url = gw.service.url("/v1/events");
    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let allowed = preflight(ORIGIN).await.expect("sent");
    assert_eq!(allowed.status().as_u16(), 204);
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], ORIGIN);
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert!(h["access-control-allow-headers"]
        .to_str()
        .is_ok_and(|v| v.contains("authorization") && v.contains("x-eye-signature")));
    assert!(h.contains_key("access-control-max-age"));
    assert_eq!(h["vary"], "Origin");
    let refused = preflight("https://evil.example.com").await.expect("sent");
    assert_eq!(refused.status().as_u16(), 403);
    assert!(!refused
        .headers()
        .contains_key("access-control-allow-origin"));

    // The key from its origin: accepted, with ACAO.
    let body = event(1, "party").to_string();
    let response = gw
        .http
        .post(&url)
        .bearer_auth(gw.key())
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(read(response).await.0, 202);
    // From another origin: 403 problem, no ACAO.
    let response = gw
        .http
        .post(&url)
        .bearer_auth(gw.key())
        .header("origin", "https://evil.example.com")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(read(response).await.0, 403);
    // A beacon: text/plain, the key in the URL, from the allowed origin.
    let beacon = format!("{url}?write_key={}", gw.key());
    let response = gw
        .http
        .post(&beacon)
        .header("origin", ORIGIN)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(event(2, "party").to_string())
        .send()
        .await
        .expect("sent");
    let (status, answer) = read(response).await;
    assert_eq!(
        (status, answer["accepted"].clone()),
        (202, json!(1)),
        "{answer}"
    );
    assert_eq!(gw.stored().await, 2);
}

#[tokio::test]
async fn rate_limits_are_hit_and_recover() {
    let gw = gateway("rate_limit = { events_per_second = 2, burst = 4 }").await;
    let send = |events: Vec<Value>| {
        gw.http
            .post(gw.service.url("/v1/events"))
            .bearer_auth(gw.key())
            .json(&Value::Array(events))
            .send()
    };
    let first = send((0..4).map(|n| event(n, "party")).collect())
        .await
        .expect("sent");
    assert_eq!(first.status().as_u16(), 202);
    let limited = send(vec![event(10, "party")]).await.expect("sent");
    assert_eq!(limited.status().as_u16(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    // Recovers: poll with a deadline (the bucket refills at 2 events/s).
    let started = Instant::now();
    loop {
        let again = send(vec![event(11, "party")]).await.expect("sent");
        if again.status().as_u16() == 202 {
            break;
        }
        assert_eq!(again.status().as_u16(), 429);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(gw.stored().await, 5);
}

#[tokio::test]
async fn categories_outside_the_allow_list_are_rejected_per_event() {
    let gw = gateway("categories = [\"page interaction\"]").await;
    let response = gw
        .http
        .post(gw.service.url("/v1/events"))
        .bearer_auth(gw.key())
        .json(&json!([event(1, "party")]))
        .send()
        .await
        .expect("sent");
    let (status, answer) = read(response).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["results"][0]["code"], "category_not_allowed",
        "{answer}"
    );
    assert_eq!(answer["results"][0]["pointer"], "/category");
    assert_eq!(gw.stored().await, 0);
}
