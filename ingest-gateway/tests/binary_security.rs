//! The `eye-gateway` binary as operators run it: a secret rotation finished by
//! SIGHUP (old secret refused after the reload, a bad file keeps the registry),
//! a category added by SIGHUP (a broken schema file keeps the schemas in force),
//! a slow-loris client cut off by the header read timeout, an oversized header
//! refused, and its debug-level log of all that never showing a secret.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eye_server_kit::signature;
use serde_json::json;

const OLD: &str = "bin_old_secret_d41d8cd98f";
const NEW: &str = "bin_new_secret_9e107d9d37";
const FROM_ENV: &str = "bin_env_secret_e4d909c290";
const KEY: &str = "bin_write_key_0cc175b9c0";

/// The gateway process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn clients(secrets: &[&str]) -> String {
    let list: Vec<String> = secrets
        .iter()
        .map(|s| format!("{{ secret = \"{s}\" }}"))
        .chain(std::iter::once(
            "{ secret = { env = \"EYE_BIN_TEST_SECRET\" } }".to_owned(),
        ))
        .collect();
    format!(
        "[[clients]]\nid = \"bin\"\nwrite_keys = [{{ key = \"{KEY}\", allowed_origins = [\"https://a.example\"] }}]\n\
         hmac_secrets = [{}]\n",
        list.join(", ")
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A schema for a category the repository does not have.
const CHECKOUT_SCHEMA: &str = r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
  "x-eye-category": "checkout", "type": "object", "required": ["data"],
  "properties": {"data": {"type": "object", "required": ["cart"]}}}"#;

async fn post_signed(http: &reqwest::Client, base: &str, secret: &str) -> u16 {
    post_signed_in(
        http,
        base,
        secret,
        "party",
        json!({"host": "h", "path": "/"}),
    )
    .await
}

async fn post_signed_in(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    category: &str,
    data: serde_json::Value,
) -> u16 {
    let body = json!({"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": category,
        "name": "AppName", "data": data, "timestamp": "2021-09-26 09:15:27"})
    .to_string();
    let ts = ingest_gateway::auth::unix_now().to_string();
    http.post(format!("{base}/v1/events"))
        .header("content-type", "application/json")
        .header("x-eye-client", "bin")
        .header("x-eye-timestamp", &ts)
        .header(
            "x-eye-signature",
            signature::sign(secret.as_bytes(), &ts, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Polls until `check` holds, failing after `deadline`.
async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < deadline, "{what} within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the log file holds `text`.
async fn logged(path: &std::path::Path, text: &str) {
    eventually(
        &format!("{text:?} in the log"),
        Duration::from_secs(10),
        || async {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .contains(text)
        },
    )
    .await;
}

fn hangup(process: &Process) {
    let status = Command::new("kill")
        .args(["-HUP", &process.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[tokio::test]
async fn rotation_by_sighup_slow_clients_and_no_secret_in_the_logs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("clients.toml");
    std::fs::write(&file, clients(&[OLD, NEW])).expect("clients file");
    let schemas = dir.path().join("schemas");
    std::fs::create_dir(&schemas).expect("schemas dir");
    for entry in std::fs::read_dir(eye_testkit::schemas_dir()).expect("repo schemas") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, schemas.join(path.file_name().expect("name"))).expect("copy");
    }
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let process = Process(
        Command::new(env!("CARGO_BIN_EXE_eye-gateway"))
            .env("RUST_LOG", "debug")
            .env("EYE_BIN_TEST_SECRET", FROM_ENV)
            .env("EYE_GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("EYE_CLIENTS_FILE", &file)
            .env("EYE_SCHEMAS_DIR", &schemas)
            .env("EYE_NATS_URL", eye_testkit::shared_nats().url())
            .env("EYE_STREAM_MAX_BYTES", "1073741824")
            .env("EYE_HEADER_READ_TIMEOUT", "1s")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start eye-gateway"),
    );
    let http = reqwest::Client::new();
    eventually("the gateway is ready", Duration::from_secs(30), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;

    for secret in [OLD, NEW, FROM_ENV] {
        assert_eq!(post_signed(&http, &base, secret).await, 202, "{secret}");
    }
    assert_eq!(post_signed(&http, &base, "bin_wrong_secret").await, 401);
    let unknown_key = http
        .post(format!("{base}/v1/events?write_key={KEY}x"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown_key.status().as_u16(), 401);
    let wrong_origin = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(KEY)
        .header("origin", "https://b.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong_origin.status().as_u16(), 403);

    // A new category: unknown until its schema file is added and SIGHUP sent.
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let checkout = || async {
        post_signed_in(&http, &base, NEW, "checkout", json!({"cart": ["sku-1"]})).await
    };
    assert_eq!(checkout().await, 422, "unknown category");
    std::fs::write(schemas.join("checkout.json"), CHECKOUT_SCHEMA).expect("write");
    hangup(&process);
    eventually(
        "the new category is accepted after SIGHUP",
        Duration::from_secs(10),
        || async { checkout().await == 202 },
    )
    .await;
    let listed = http.get(format!("{base}/v1/schemas")).send().await;
    let listed = listed.expect("sent").text().await.expect("body");
    assert!(listed.contains("\"checkout\""), "{listed}");
    // A broken schema file keeps the schemas in force.
    std::fs::write(schemas.join("broken.json"), "{ not json").expect("write");
    hangup(&process);
    logged(&log_path, "event schemas NOT reloaded").await;
    assert_eq!(checkout().await, 202);
    assert_eq!(post_signed(&http, &base, OLD).await, 202);
    std::fs::remove_file(schemas.join("broken.json")).expect("remove");

    // A broken file on SIGHUP keeps the registry in force.
    std::fs::write(&file, "[[clients]]\nid = \"bad.id\"\n").expect("write");
    hangup(&process);
    logged(&log_path, "client registry NOT reloaded").await;
    assert_eq!(post_signed(&http, &base, OLD).await, 202);

    // The rotation ends: the old secret leaves the file, SIGHUP.
    std::fs::write(&file, clients(&[NEW])).expect("write");
    hangup(&process);
    eventually(
        "the old secret is refused after the reload",
        Duration::from_secs(10),
        || async { post_signed(&http, &base, OLD).await == 401 },
    )
    .await;
    assert_eq!(post_signed(&http, &base, NEW).await, 202);

    // Slow loris: half a request head, one byte at a time; the connection is
    // closed by the 1 s header read timeout, long before the 15 s we wait.
    let slow_port = port;
    let cut_off = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", slow_port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        stream
            .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            .expect("write");
        let started = Instant::now();
        let mut buf = [0u8; 512];
        while started.elapsed() < Duration::from_secs(15) {
            if stream.write_all(b"X").is_err() {
                return Some(started.elapsed());
            }
            match stream.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => return Some(started.elapsed()),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Some(started.elapsed()),
            }
        }
        None
    })
    .await
    .expect("slow client");
    let took = cut_off.expect("the slow client was never cut off");
    assert!(took < Duration::from_secs(10), "cut off after {took:?}");

    // An oversized header: 431, nothing else.
    let huge = "a".repeat(64 * 1024);
    let big = http
        .post(format!("{base}/v1/events"))
        .header("x-padding", huge)
        .body("{}")
        .send()
        .await;
    if let Ok(response) = big {
        assert_eq!(response.status().as_u16(), 431);
    }

    drop(process);
    let text = log_text();
    assert!(text.contains("reloaded the client registry"), "{text}");
    assert!(text.contains("reloaded the event schemas"), "{text}");
    assert!(text.contains("DEBUG"), "debug level is on: {text}");
    for secret in [OLD, NEW, FROM_ENV, KEY] {
        assert!(!text.contains(secret), "{secret} is in the log:\n{text}");
    }
}
