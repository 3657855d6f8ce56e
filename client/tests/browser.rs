//! The browser client (`client/js/eye.js`) in a real browser: headless
//! Chromium (Debian's `chromium`) loads a page from a small static server,
//! which imports the module, tracks events and navigates away; the events
//! queued at that moment must arrive through `navigator.sendBeacon`, the ones
//! of the next page through batched keepalive `fetch`es, all under the one
//! session id the tab keeps in `sessionStorage`, and all must then be
//! readable through the query service.
//!
//! The page is served from another origin than the gateway, so the CORS
//! preflight and the beacon's `text/plain` body are exercised as a web app
//! would. A missing `chromium` fails the test with the package to install.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Stack, WRITE_KEY, session_events};
use eye_client::Uuid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The browser: `EYE_CHROMIUM_BIN`, else `chromium` on PATH or in /usr/bin.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("EYE_CHROMIUM_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium not found: the browser client test needs Debian's chromium \
                 (apt-get install chromium) or EYE_CHROMIUM_BIN set to a Chromium binary"
            )
        })
}

/// The first page: 25 events, fewer than a batch and long before the flush
/// interval, so only the page-hide beacon can deliver them; then it leaves.
const FIRST_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>first</title>
<script type="module">
import eye from "/eye.js";
const params = new URLSearchParams(location.search);
eye.init({ endpoint: params.get("gw"), writeKey: params.get("key"), batchSize: 100, flushInterval: 600000 });
for (let i = 0; i < 25; i++) {
  eye.track("party", "Beacon", { host: location.host, path: "/first/" + i });
}
setTimeout(() => { location.href = "/next.html" + location.search; }, 100);
</script>
"#;

/// The next page: 12 events in batches of 5 (two sent when full, the last
/// two by an explicit flush), then it shows its session id and what is left.
const NEXT_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>next</title>
<p id="status">sending</p>
<script type="module">
import eye from "/eye.js";
const params = new URLSearchParams(location.search);
eye.init({ endpoint: params.get("gw"), writeKey: params.get("key"), batchSize: 5, flushInterval: 600000 });
for (let i = 0; i < 12; i++) {
  eye.track("party", "Fetch", { host: location.host, path: "/next/" + i });
}
// Two batches went out when full; flush waits for them and sends the rest.
await eye.flush();
document.getElementById("status").textContent =
  "session=" + eye.sessionId() + ";pending=" + eye.pending() + ";";
</script>
"#;

/// Serves the module and the two pages on a free loopback port until dropped.
struct StaticServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_pages() -> StaticServer {
    let module_path = concat!(env!("CARGO_MANIFEST_DIR"), "/js/eye.js");
    let module = std::fs::read(module_path).expect("client/js/eye.js");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let module = module.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let path = path.split('?').next().unwrap_or(path);
                let (status, kind, body): (&str, &str, Vec<u8>) = match path {
                    "/eye.js" => ("200 OK", "text/javascript", module),
                    "/first.html" => ("200 OK", "text/html", FIRST_PAGE.as_bytes().to_vec()),
                    "/next.html" => ("200 OK", "text/html", NEXT_PAGE.as_bytes().to_vec()),
                    _ => ("404 Not Found", "text/plain", b"not found".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}; charset=utf-8\r\n\
                     Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    StaticServer { port, task }
}

/// Runs headless Chromium on `url` for `budget_ms` of virtual time; the DOM
/// it ends on, and its log.
async fn dump_dom(url: &str, budget_ms: u32) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("chromium starts");
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish within 120 s on {url}"))
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed on {url}: {log}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tracked_in_chromium_arrive_by_beacon_and_fetch_in_one_session() {
    let stack = Stack::start("client_browser").await;
    let pages = serve_pages().await;
    let gateway = stack.gateway.url("");
    let url = format!(
        "http://127.0.0.1:{}/first.html?gw={gateway}&key={WRITE_KEY}",
        pages.port
    );
    let (dom, log) = dump_dom(&url, 10_000).await;
    for line in log.lines().filter(|l| l.contains("CONSOLE")) {
        assert!(
            !line.contains("Uncaught") && !line.contains("eye:"),
            "the page logged an error: {line}"
        );
    }
    assert!(
        dom.contains(";pending=0;"),
        "events left unsent: {dom}\n{log}"
    );
    let session = dom
        .split("session=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("the next page did not finish: {dom}\n{log}"));

    // Both pages' events, under the tab's one session.
    let reader = stack.reader();
    let started = Instant::now();
    let events = loop {
        let events = session_events(&reader, session).await;
        if events.len() >= 37 || started.elapsed() > Duration::from_secs(20) {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let beacon = events.iter().filter(|e| e.name == "Beacon").count();
    let fetched = events.iter().filter(|e| e.name == "Fetch").count();
    assert_eq!(
        (beacon, fetched),
        (25, 12),
        "events stored for session {session}: {events:?}"
    );
    assert!(events.iter().all(|e| e.client_id == common::CLIENT));
    let mut paths: Vec<&str> = events
        .iter()
        .filter_map(|e| e.data["path"].as_str())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), 37, "each event once");
    stack.stop().await;
}
