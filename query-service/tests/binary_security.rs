//! The `eye-query` binary: read tokens replaced by SIGHUP (the old one is
//! refused after the reload) and its debug-level log never shows a token.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eye_testkit::ClickHouseServer;

const OLD: &str = "qbin_old_read_token_8f14e45f";
const NEW: &str = "qbin_new_read_token_c9f0f895";
const FROM_ENV: &str = "qbin_env_read_token_45c48cce";

/// The service process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn clients(token: &str) -> String {
    format!(
        "[[clients]]\nid = \"qbin\"\nread_tokens = [{{ token = \"{token}\", scope = \"client\" }}, \
         {{ token = {{ env = \"EYE_QBIN_TOKEN\" }}, scope = \"admin\" }}]\n"
    )
}

async fn status(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    http.get(format!("{base}/v1/errors"))
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn tokens_reload_on_sighup_and_never_reach_the_log() {
    let clickhouse = eye_testkit::shared_clickhouse();
    let (database, _writer) = {
        let database = clickhouse.create_database("q_bin").await;
        let writer = clickhouse.client(&database);
        consumer::migrations::migrate(&writer, &database)
            .await
            .expect("migrations");
        (database, writer)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("clients.toml");
    std::fs::write(&file, clients(OLD)).expect("clients file");
    let log_path = dir.path().join("query.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let base = format!("http://127.0.0.1:{port}");
    let process = Process(
        Command::new(env!("CARGO_BIN_EXE_eye-query"))
            .env("RUST_LOG", "debug")
            .env("EYE_QBIN_TOKEN", FROM_ENV)
            .env("EYE_QUERY_LISTEN", format!("127.0.0.1:{port}"))
            .env("EYE_CLIENTS_FILE", &file)
            .env("EYE_CLICKHOUSE_URL", clickhouse.http_url())
            .env("EYE_CLICKHOUSE_DATABASE", &database)
            .env("EYE_CLICKHOUSE_USER", ClickHouseServer::READER_USER)
            .env("EYE_CLICKHOUSE_PASSWORD", ClickHouseServer::READER_PASSWORD)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start eye-query"),
    );
    let http = reqwest::Client::new();
    let started = Instant::now();
    while status(&http, &base, OLD).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(30), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&http, &base, FROM_ENV).await, 200);
    assert_eq!(status(&http, &base, NEW).await, 401);

    std::fs::write(&file, clients(NEW)).expect("write");
    let hup = Command::new("kill")
        .args(["-HUP", &process.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    let started = Instant::now();
    while status(&http, &base, OLD).await != 401 {
        assert!(started.elapsed() < Duration::from_secs(10), "not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&http, &base, NEW).await, 200);

    drop(process);
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(text.contains("reloaded the client registry"), "{text}");
    assert!(text.contains("DEBUG"), "{text}");
    for token in [OLD, NEW, FROM_ENV] {
        assert!(!text.contains(token), "{token} is in the log:\n{text}");
    }
}
