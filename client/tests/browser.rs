//! The browser client (`client/js/eye.js`) in a real browser: headless
//! Chromium (Debian's `chromium`) loads a page from a small static server,
//! which imports the module, tracks events and navigates away; the events
//! queued at that moment must arrive through `navigator.sendBeacon`, the ones
//! of the next page through batched keepalive `fetch`es, all under the one
//! session id the tab keeps in `sessionStorage`, and all must then be
//! readable through the query service.
//!
//! The pages' endpoint is their own origin: the test's server passes each
//! request on to the real gateway (a beacon, which carries its write key in
//! the URL and a `text/plain` body, as the equivalent Bearer JSON request),
//! counts the beacons, and can drop connections or answer 503 first. A third
//! test gives the pages the gateway itself as endpoint, another origin, so
//! the gateway's CORS preflight and its beacon handling (`?write_key=`, a
//! `text/plain` body) are exercised as on a real site. A missing `chromium`
//! fails the test with the package to install.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Stack, WRITE_KEY, session_events};
use eye_client::{Client, StoredEvent, Uuid};
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
eye.init({ endpoint: params.get("gw") || location.origin, writeKey: params.get("key"), batchSize: 100, flushInterval: 600000 });
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
eye.init({ endpoint: params.get("gw") || location.origin, writeKey: params.get("key"), batchSize: 5, flushInterval: 600000 });
for (let i = 0; i < 12; i++) {
  eye.track("party", "Fetch", { host: location.host, path: "/next/" + i });
}
// Two batches went out when full; flush waits for them and sends the rest.
await eye.flush();
document.getElementById("status").textContent =
  "session=" + eye.sessionId() + ";pending=" + eye.pending() + ";";
</script>
"#;

/// A page whose gateway is its own origin (the static server below, which
/// fails the first requests and then forwards to the real gateway): 5 events
/// in one batch must survive a dropped connection and a 503.
const RETRY_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>retry</title>
<p id="status">sending</p>
<script type="module">
import eye from "/eye.js";
const params = new URLSearchParams(location.search);
eye.init({ endpoint: location.origin, writeKey: params.get("key"), batchSize: 5, flushInterval: 600000 });
document.getElementById("status").textContent = "session=" + eye.sessionId() + ";";
for (let i = 0; i < 5; i++) {
  eye.track("party", "Retried", { host: location.host, path: "/retry/" + i });
}
</script>
"#;

/// Serves the module and the pages on a free loopback port until dropped,
/// and `POST /v1/events` for the retry page: the connections of the first
/// two requests are closed without an answer, the third gets 503, later ones
/// are forwarded to `gateway`.
struct StaticServer {
    port: u16,
    posts: Arc<AtomicU32>,
    beacons: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request: its path, the headers we need and the body.
struct Request {
    method: String,
    path: String,
    query: String,
    authorization: String,
    content_type: String,
    body: Vec<u8>,
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_owned(), query.to_owned());
    let (mut length, mut authorization, mut content_type) = (0, String::new(), String::new());
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = value.trim().to_owned(),
                "content-type" => content_type = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    Some(Request {
        method,
        path,
        query,
        authorization,
        content_type,
        body,
    })
}

async fn serve_pages(gateway: String, fail_first: u32) -> StaticServer {
    let module_path = concat!(env!("CARGO_MANIFEST_DIR"), "/js/eye.js");
    let module = std::fs::read(module_path).expect("client/js/eye.js");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let posts = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&posts);
    let beacons = Arc::new(AtomicU32::new(0));
    let beacon_counter = Arc::clone(&beacons);
    let http = reqwest::Client::new();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let module = module.clone();
            let counter = Arc::clone(&counter);
            let beacon_counter = Arc::clone(&beacon_counter);
            let http = http.clone();
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else {
                    return;
                };
                let (status, kind, body): (String, String, Vec<u8>) =
                    match (request.method.as_str(), request.path.as_str()) {
                        ("GET", "/eye.js") => ("200 OK".into(), "text/javascript".into(), module),
                        ("GET", "/first.html") => page(FIRST_PAGE),
                        ("GET", "/next.html") => page(NEXT_PAGE),
                        ("GET", "/retry.html") => page(RETRY_PAGE),
                        ("POST", "/v1/events") => match counter.fetch_add(1, Ordering::SeqCst) {
                            // Network failures: no answer at all.
                            n if n + 1 < fail_first => return,
                            n if n + 1 == fail_first => (
                                "503 Service Unavailable".into(),
                                "application/problem+json".into(),
                                br#"{"type":"urn:the-eye:problem:broker-unavailable","title":"t","status":503,"detail":"d"}"#.to_vec(),
                            ),
                            _ => {
                                if request.query.contains("write_key=") {
                                    beacon_counter.fetch_add(1, Ordering::SeqCst);
                                }
                                forward(&http, &gateway, request).await
                            }
                        },
                        _ => ("404 Not Found".into(), "text/plain".into(), b"not found".to_vec()),
                    };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n\
                     Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    StaticServer {
        port,
        posts,
        beacons,
        task,
    }
}

fn page(html: &str) -> (String, String, Vec<u8>) {
    (
        "200 OK".into(),
        "text/html; charset=utf-8".into(),
        html.as_bytes().to_vec(),
    )
}

/// Sends `request` on to the gateway; its answer. A beacon (the write key in
/// the query, a `text/plain` body) is passed on as the equivalent `fetch`
/// (`Authorization: Bearer`, `application/json`), so the test needs no more
/// of the gateway than the Bearer API.
async fn forward(
    http: &reqwest::Client,
    gateway: &str,
    request: Request,
) -> (String, String, Vec<u8>) {
    let key = request
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix("write_key="));
    let (authorization, content_type) = match key {
        Some(key) if request.authorization.is_empty() => {
            (format!("Bearer {key}"), "application/json".to_owned())
        }
        _ => (request.authorization, request.content_type),
    };
    let answer = http
        .post(format!("{gateway}/v1/events"))
        .header("authorization", authorization)
        .header("content-type", content_type)
        .body(request.body)
        .send()
        .await
        .expect("forwarded to the gateway");
    let status = answer.status();
    let kind = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body = answer.bytes().await.expect("gateway body").to_vec();
    (
        format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        kind,
        body,
    )
}

/// Runs headless Chromium on `url` for `budget_ms` of virtual time; the DOM
/// it ends on, and its log.
///
/// Once in a while (seen once in CI on a loaded machine, a run that normally
/// takes seconds) Chromium never ends a `--dump-dom` run: such a run is
/// killed after [`CHROMIUM_DEADLINE`] and started again once with a fresh
/// profile, so the page runs again from the start (with a new session id).
async fn dump_dom(url: &str, budget_ms: u32) -> (String, String) {
    for attempt in 1..=2 {
        if let Some(output) = run_chromium(url, budget_ms).await {
            return output;
        }
        eprintln!("chromium attempt {attempt} on {url} did not end within {CHROMIUM_DEADLINE:?}");
    }
    panic!("chromium did not finish within {CHROMIUM_DEADLINE:?} on {url}, twice")
}

/// Longest real time one Chromium run may take.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(60);

/// One Chromium run of [`dump_dom`]; `None` if it did not end in time (it is killed).
async fn run_chromium(url: &str, budget_ms: u32) -> Option<(String, String)> {
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
    let output = tokio::time::timeout(CHROMIUM_DEADLINE, child.wait_with_output())
        .await
        .ok()?
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed on {url}: {log}");
    Some((String::from_utf8_lossy(&output.stdout).into_owned(), log))
}

/// The session id a page wrote as `session=<id>;`, or a failure showing the page.
fn page_session(dom: &str, log: &str) -> Uuid {
    dom.split("session=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("the page did not show its session: {dom}\n{log}"))
}

/// The stored events of `session` once there are `n` of them, or whatever
/// is there after 20 s (the caller's assertion then shows it).
async fn stored_events(reader: &Client, session: Uuid, n: usize) -> Vec<StoredEvent> {
    let started = Instant::now();
    loop {
        let events = session_events(reader, session).await;
        if events.len() >= n || started.elapsed() > Duration::from_secs(20) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tracked_in_chromium_arrive_by_beacon_and_fetch_in_one_session() {
    let stack = Stack::start("client_browser").await;
    let pages = serve_pages(stack.gateway.url(""), 0).await;
    let url = format!("http://127.0.0.1:{}/first.html?key={WRITE_KEY}", pages.port);
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
    let session = page_session(&dom, &log);

    // Both pages' events, under the tab's one session.
    let reader = stack.reader();
    let events = stored_events(&reader, session, 37).await;
    let beacons = pages.beacons.load(Ordering::SeqCst);
    assert!(
        beacons >= 1,
        "the first page's events went by sendBeacon: {beacons} beacons"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_survives_a_network_failure_and_a_503_in_chromium() {
    let stack = Stack::start("client_browser_retry").await;
    let pages = serve_pages(stack.gateway.url(""), 3).await;
    let url = format!("http://127.0.0.1:{}/retry.html?key={WRITE_KEY}", pages.port);
    let (dom, log) = dump_dom(&url, 20_000).await;
    let session = page_session(&dom, &log);
    let posts = pages.posts.load(Ordering::SeqCst);
    assert!(
        posts >= 4,
        "two dropped connections, a 503, then a forwarded request: {posts} POSTs"
    );
    let reader = stack.reader();
    let events = stored_events(&reader, session, 5).await;
    assert_eq!(
        events.len(),
        5,
        "stored for {session} after {posts} POSTs: {events:?}\n{log}"
    );
    assert!(events.iter().all(|e| e.name == "Retried"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_sends_straight_to_the_gateway() {
    // The same two pages, with the gateway as their endpoint: fetches go
    // through its CORS preflight, the beacon with `?write_key=` and a
    // text/plain body, as on a real site.
    let stack = Stack::start("client_browser_cors").await;
    let gateway = stack.gateway.url("");
    let pages = serve_pages(gateway.clone(), 0).await;
    let url = format!(
        "http://127.0.0.1:{}/first.html?gw={gateway}&key={WRITE_KEY}",
        pages.port
    );
    let (dom, log) = dump_dom(&url, 10_000).await;
    assert!(
        dom.contains(";pending=0;"),
        "events left unsent: {dom}\n{log}"
    );
    let session = page_session(&dom, &log);
    assert_eq!(
        pages.posts.load(Ordering::SeqCst),
        0,
        "nothing went through the pages' origin"
    );
    let events = stored_events(&stack.reader(), session, 37).await;
    let beacon = events.iter().filter(|e| e.name == "Beacon").count();
    let fetched = events.iter().filter(|e| e.name == "Fetch").count();
    assert_eq!(
        (beacon, fetched),
        (25, 12),
        "stored for {session}: {events:?}"
    );
    stack.stop().await;
}
