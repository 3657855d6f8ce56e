//! The session explorer in a real browser: headless Chromium (Debian's
//! `chromium`, no browser download) loads `/ui` from the query service on a
//! real ClickHouse with a few events and rejects, and the rendered DOM must
//! show the sessions (in order), a session's timeline (in order, with its
//! gap marker, data escaped as text) and the rejects (filtered by code).
//! Screenshots of each view at 1280×800 and 390×844 are kept in
//! `target/ui-screenshots/` (test artefacts, not committed).
//!
//! Chromium is driven by its command line (`--dump-dom`, `--screenshot`)
//! with a virtual time budget, so the page's fetches finish before the DOM is
//! read; no Node, no DevTools client. A missing `chromium` fails the test
//! with the package to install (`./deploy/local.sh test` installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{event, reject, Stack, ADMIN_TOKEN};
use uuid::Uuid;

const MINUTE: i64 = 60_000_000;

/// The browser: `EYE_CHROMIUM_BIN`, else `chromium` on PATH or in /usr/bin.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("EYE_CHROMIUM_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "EYE_CHROMIUM_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium not found: the browser test needs Debian's chromium \
                 (apt-get install chromium; ./deploy/local.sh test installs it) \
                 or EYE_CHROMIUM_BIN set to a Chromium binary"
            )
        })
}

/// Headless Chromium with a throwaway profile.
struct Browser {
    binary: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            binary: chromium(),
            profile: tempfile::tempdir().expect("profile dir"),
        }
    }

    /// The Chromium command line of [`Browser::run`] with profile `profile`.
    fn command(
        &self,
        profile: &std::path::Path,
        url: &str,
        size: (u32, u32),
        budget_ms: u32,
        extra: &[String],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
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
                "--hide-scrollbars",
                "--mute-audio",
                // The page's console (errors, CSP violations) on stderr.
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={},{}", size.0, size.1))
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs Chromium on `url` with `extra` arguments at `width`×`height`,
    /// letting the page run `budget_ms` of virtual time; its stdout.
    ///
    /// Once in a while (seen once in CI on a loaded machine) Chromium never
    /// ends a run that normally takes seconds: such a run is killed after a
    /// minute and started again once with a fresh profile.
    async fn run(&self, url: &str, size: (u32, u32), budget_ms: u32, extra: &[String]) -> String {
        let deadline = Duration::from_secs(60);
        let mut output = None;
        for attempt in 1..=2 {
            let fresh;
            let profile = if attempt == 1 {
                self.profile.path()
            } else {
                fresh = tempfile::tempdir().expect("profile dir");
                fresh.path()
            };
            let child = self
                .command(profile, url, size, budget_ms, extra)
                .spawn()
                .expect("chromium starts");
            if let Ok(done) = tokio::time::timeout(deadline, child.wait_with_output()).await {
                output = Some(done.expect("chromium runs"));
                break;
            }
            eprintln!("chromium attempt {attempt} on {url} did not end within {deadline:?}");
        }
        let output = output.unwrap_or_else(|| {
            panic!("chromium did not finish within {deadline:?} on {url}, twice")
        });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "chromium failed on {url}: {stderr}"
        );
        // A script error, a resource the Content-Security-Policy refused or
        // a failed load (other than the 401 of a refused token) is a failure
        // even when the DOM looks right.
        for line in stderr.lines().filter(|l| l.contains("CONSOLE")) {
            let bad = ["Uncaught", "Refused to", "Content Security Policy"]
                .iter()
                .any(|bad| line.contains(bad))
                || (line.contains("Failed to load") && !line.contains("status of 401"));
            assert!(!bad, "the page logged an error on {url}: {line}");
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The DOM of `url` once the page is done loading (no area marked
    /// `aria-busy`), retried with a longer virtual time budget while not.
    async fn dom(&self, url: &str) -> String {
        self.dom_within(url, &[5_000, 15_000, 40_000]).await
    }

    /// The DOM of `url` after each of `budgets` (virtual milliseconds) in
    /// turn until the page is done loading.
    async fn dom_within(&self, url: &str, budgets: &[u32]) -> String {
        let mut dom = String::new();
        for &budget in budgets {
            dom = self
                .run(url, (1280, 800), budget, &["--dump-dom".to_owned()])
                .await;
            if dom.contains("id=\"main\"")
                && !dom.contains("aria-busy=\"true\"")
                && !dom.contains("<main id=\"main\" tabindex=\"-1\">\n  <noscript>")
            {
                return dom;
            }
        }
        panic!("{url} was still loading after {budgets:?} ms of virtual time:\n{dom}");
    }

    /// A PNG screenshot of `url` at `size` into `path`.
    async fn screenshot(&self, url: &str, size: (u32, u32), path: &Path) {
        let _ = std::fs::remove_file(path);
        self.run(
            url,
            size,
            15_000,
            &[format!("--screenshot={}", path.display())],
        )
        .await;
        let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "{} is not a screenshot ({} bytes)",
            path.display(),
            png.len()
        );
    }
}

/// Where `needle` is in `haystack`, or a failure that shows the page.
fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not on the page:\n{haystack}"))
}

/// Asserts that `needles` appear in `page` in this order (each one found
/// after the previous one).
fn in_order(page: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match page[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} is not on the page after {from} of {needles:?}:\n{page}"),
        }
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("EYE_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

#[tokio::test]
async fn the_explorer_shows_sessions_a_timeline_and_rejects_in_chromium() {
    let browser = Browser::new();
    let stack = Stack::start("q_browser", &[]).await;
    let now = now_micros();
    let (s1, s2, s3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut open = event(s1, "a1", "party", "AppName", now - 50 * MINUTE);
    open.data = r#"{"host":"www.party.com","path":"/"}"#.to_owned();
    let mut hostile = event(
        s1,
        "a4",
        "party",
        "<img src=x onerror=alert(1)>",
        now - 19 * MINUTE,
    );
    hostile.data = r#"{"html":"<script>alert(2)</script>"}"#.to_owned();
    stack
        .insert(&[
            open,
            event(s1, "a2", "party", "Click", now - 50 * MINUTE + 1_000_000),
            event(s1, "a3", "page view", "View", now - 20 * MINUTE),
            hostile,
            event(s2, "b1", "party", "Open", now - 40 * MINUTE),
            event(s3, "c1", "page view", "View", now - 30 * MINUTE),
        ])
        .await;
    let mut bad_id = reject("r1", "demo", "invalid_session_id", now - 10 * MINUTE);
    bad_id.message = "session_id must be a UUID".to_owned();
    bad_id.pointer = "/session_id".to_owned();
    bad_id.raw = r#"{"session_id":"not-a-uuid","category":"party"}"#.to_owned();
    let mut future = reject("r2", "shop", "timestamp_in_future", now - 5 * MINUTE);
    future.message = "the timestamp is 2 hours ahead".to_owned();
    stack.insert_errors(&[bad_id, future]).await;

    let page = |route: &str| {
        let separator = if route.contains('?') { '&' } else { '?' };
        stack
            .service
            .url(&format!("/ui#{route}{separator}token={ADMIN_TOKEN}"))
    };

    // Without a token: the token form, and no data.
    let dom = browser.dom(&stack.service.url("/ui")).await;
    position(&dom, "Use token");
    assert!(!dom.contains(&s1.to_string()));
    // A refused token: the form again, saying why.
    let dom = browser
        .dom(&stack.service.url("/ui#token=not-a-token"))
        .await;
    position(&dom, "refused this token (401)");

    // Sessions of the last day, oldest first, with the chart above them.
    let sessions = page("/sessions");
    let dom = browser.dom(&sessions).await;
    in_order(
        &dom,
        &[
            "Events per hour",
            "<svg",
            &s1.to_string(),
            &s2.to_string(),
            &s3.to_string(),
        ],
    );
    position(&dom, "6 events in");
    assert!(!dom.contains("Use token"), "the token was taken");
    let dom = browser.dom(&page("/sessions?order=newest")).await;
    in_order(&dom, &[&s3.to_string(), &s2.to_string(), &s1.to_string()]);
    let dom = browser.dom(&page("/sessions?category=page%20view")).await;
    in_order(
        &dom,
        &["(category page view)", &s1.to_string(), &s3.to_string()],
    );
    assert!(!dom.contains(&s2.to_string()), "s2 has no page view event");

    // Live: the sessions view reads again every 5 s (of the browser's
    // virtual time here), so three reads at least in 15 s where one without.
    let before = sessions_reads(&stack).await;
    let dom = browser
        .dom_within(&page("/sessions?live=1"), &[15_000])
        .await;
    in_order(&dom, &[&s1.to_string(), "UTC (live)."]);
    let reads = sessions_reads(&stack).await - before;
    eprintln!("live mode: {reads} reads of /v1/sessions in 15 s of virtual time");
    assert!(
        (3..=4).contains(&reads),
        "{reads} reads of /v1/sessions in live mode"
    );

    // One session's timeline: in order, relative times, the gap, data as text.
    let timeline = page(&format!("/sessions/{s1}"));
    let dom = browser.dom(&timeline).await;
    in_order(
        &dom,
        &[
            "Copy curl",
            &format!("/v1/sessions/{s1}/events"),
            "Time axis",
            "29 min 59 s without events</title>",
            "<ol class=\"events\">",
            "+0 µs</span>",
            "<span class=\"name\">AppName</span>",
            "www.party.com",
            "+1.000 s</span>",
            "<span class=\"name\">Click</span>",
            "<li class=\"gap\">29 min 59 s without events</li>",
            "+30 min 00 s</span>",
            "<span class=\"cat\" data-color=\"1\">page view</span>",
            "<span class=\"name\">View</span>",
            "<span class=\"name\">&lt;img src=x onerror=alert(1)&gt;</span>",
            "&lt;script&gt;alert(2)&lt;/script&gt;",
        ],
    );
    assert!(
        !dom.contains("<img src") && !dom.contains("<script>alert"),
        "data is text, never markup"
    );

    // Rejects: the chart by code and the table; then filtered by code.
    let rejects = page("/rejects");
    let dom = browser.dom(&rejects).await;
    in_order(
        &dom,
        &[
            "Rejects per hour by code",
            "2 rejects in",
            "invalid_session_id",
            "session_id must be a UUID",
            "/session_id",
            "not-a-uuid",
            "timestamp_in_future",
            "the timestamp is 2 hours ahead",
            "shop",
        ],
    );
    let dom = browser
        .dom(&page("/rejects?code=timestamp_in_future"))
        .await;
    position(&dom, "the timestamp is 2 hours ahead");
    assert!(!dom.contains("not-a-uuid"), "filtered out by code");
    let dom = browser.dom(&page("/rejects?client=demo")).await;
    position(&dom, "not-a-uuid");
    assert!(!dom.contains("2 hours ahead"), "filtered out by client");

    // Screenshots of each view, desktop and phone, kept for people to look at.
    let dir = screenshots_dir();
    for (name, url) in [
        ("sessions", &sessions),
        ("timeline", &timeline),
        ("rejects", &rejects),
    ] {
        for (device, size) in [("desktop", (1280, 800)), ("phone", (390, 844))] {
            let path = dir.join(format!("{name}-{device}.png"));
            browser.screenshot(url, size, &path).await;
            eprintln!("screenshot: {}", path.display());
        }
    }
}

#[tokio::test]
async fn ten_thousand_sessions_in_range_are_read_a_page_at_a_time() {
    let browser = Browser::new();
    let stack = Stack::start("q_browser_many", &[]).await;
    let start = now_micros() - 3 * 60 * MINUTE;
    let sessions: Vec<Uuid> = (0..10_000).map(|_| Uuid::new_v4()).collect();
    let rows: Vec<_> = sessions
        .iter()
        .zip(0i64..)
        .map(|(s, i)| event(*s, &format!("m{i}"), "party", "Open", start + i * 1_000))
        .collect();
    stack.insert(&rows).await;
    let url = |query: &str| {
        stack
            .service
            .url(&format!("/ui#/sessions?{query}token={ADMIN_TOKEN}"))
    };

    let dom = browser.dom(&url("")).await;
    assert_eq!(
        dom.matches("<a href=\"#/sessions/").count(),
        100,
        "one page of 100"
    );
    in_order(
        &dom,
        &[
            "10000 events in",
            &sessions[0].to_string(),
            &sessions[99].to_string(),
            "disabled=\"\">← Previous",
            "Page 1: sessions 1–100</span>",
            "<button type=\"button\">Next →",
        ],
    );
    assert!(!dom.contains(&sessions[100].to_string()));

    let dom = browser.dom(&url("order=newest&limit=500&")).await;
    assert_eq!(
        dom.matches("<a href=\"#/sessions/").count(),
        500,
        "one page of 500"
    );
    in_order(
        &dom,
        &[
            &sessions[9_999].to_string(),
            &sessions[9_500].to_string(),
            "Next →",
        ],
    );
}

/// How many `GET /v1/sessions` the service answered with 200 (its metrics).
async fn sessions_reads(stack: &Stack) -> u64 {
    let metrics = stack
        .http
        .get(stack.service.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                r#"eye_query_http_requests_total{route="/v1/sessions",status="200"} "#,
            )
        })
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// Now, in microseconds since 1970.
fn now_micros() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_micros()).expect("in range")
}
