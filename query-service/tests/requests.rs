//! What the service refuses, and that nothing a client sends reaches SQL:
//! bad and unknown parameters (400 naming the parameter), SQL-injection
//! attempts in every parameter (400 or an empty answer, never a ClickHouse
//! error), missing or wrong read tokens (401).

mod common;

use common::{answer, event, Stack, ADMIN_TOKEN, T0};
use serde_json::json;
use uuid::Uuid;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let stack = Stack::start("q_bad", &[]).await;
    let s = Uuid::new_v4();
    let long = "x".repeat(300);
    let cases: Vec<(String, &str)> = vec![
        ("/v1/events?session_id=nope".into(), "session_id"),
        ("/v1/events?session_id=".into(), "session_id"),
        ("/v1/sessions/not-a-uuid/events".into(), "session_id"),
        (
            format!("/v1/sessions/{s}/events?session_id={s}"),
            "session_id",
        ),
        ("/v1/events?category=".into(), "category"),
        (format!("/v1/events?name={long}"), "name"),
        ("/v1/events?name=a%0Ab".into(), "name"),
        ("/v1/events?from=yesterday".into(), "from"),
        ("/v1/events?to=2021-13-01%2000:00:00".into(), "to"),
        (
            "/v1/events?from=2021-09-26%2009:15:27.000001&to=2021-09-26%2009:15:27.000001".into(),
            "from",
        ),
        ("/v1/events?from=2021-09-27&to=2021-09-26".into(), "from"),
        ("/v1/events?limit=0".into(), "limit"),
        ("/v1/events?limit=10001".into(), "limit"),
        ("/v1/events?limit=1.5".into(), "limit"),
        ("/v1/events?cursor=garbage".into(), "cursor"),
        ("/v1/events?sort=desc".into(), "sort"),
        ("/v1/events?category=a&category=b".into(), "category"),
        ("/v1/sessions?name=x".into(), "name"),
        ("/v1/sessions?from=x".into(), "from"),
        ("/v1/sessions?limit=100000".into(), "limit"),
        ("/v1/errors?code=nope".into(), "code"),
        ("/v1/errors?client=a.b".into(), "client"),
        ("/v1/errors?category=party".into(), "category"),
        ("/v1/errors?to=2021-09-26T09:15:27+25:00".into(), "to"),
    ];
    for (path, parameter) in &cases {
        let (status, body) = stack.get(path, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["parameter"], *parameter, "{path}: {body}");
        assert_eq!(body["type"], "urn:the-eye:problem:bad-parameter");
    }

    // The search body: the same rules, and a body that is no object.
    for (body, parameter) in [
        (json!({"from": "2021-09-27", "to": "2021-09-26"}), "from"),
        (json!({"limit": 0}), "limit"),
        (json!({"category": ["a"]}), "category"),
        (json!({"categry": "a"}), "categry"),
    ] {
        let (status, answer) = stack.search(&body).await;
        assert_eq!(
            (status, answer["parameter"].as_str()),
            (400, Some(parameter)),
            "{body}: {answer}"
        );
    }
    let (status, _) = answer(
        stack
            .http
            .post(stack.service.url("/v1/events/search"))
            .bearer_auth(ADMIN_TOKEN)
            .body("[1, 2"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = answer(
        stack
            .http
            .post(stack.service.url("/v1/events/search?category=a"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("category"))
    );
    let (status, _) = answer(
        stack
            .http
            .post(stack.service.url("/v1/events/search"))
            .bearer_auth(ADMIN_TOKEN)
            .body(vec![b' '; 100_000]),
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = stack.get("/v1/nothing", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn injection_attempts_in_every_parameter_are_refused_or_find_nothing() {
    let stack = Stack::start("q_inject", &[]).await;
    let s = Uuid::new_v4();
    stack
        .insert(&[
            event(s, "e1", "party", "Open", T0),
            event(s, "e2", "party", "Click", T0 + 1),
        ])
        .await;
    let attacks = [
        "' OR 1=1 --",
        "x' OR '1'='1",
        "party'; DROP TABLE events; --",
        "\\' OR 1=1 --",
        "x\\",
        "?",
        "??fields",
        "{database}",
        "') UNION ALL SELECT name FROM system.tables --",
        "1; SELECT 1",
        "`events`",
        "2021-09-26 09:15:27' OR '1'='1",
        "e2085be5-9137-4e4e-80b5-f1ffddc25423' OR 1=1 --",
        "\u{0}",
        "p\u{2028}arty",
    ];
    let routes: [(&str, &[&str]); 3] = [
        (
            "/v1/events",
            &[
                "session_id",
                "category",
                "name",
                "from",
                "to",
                "limit",
                "cursor",
            ],
        ),
        (
            "/v1/sessions",
            &["category", "from", "to", "limit", "cursor"],
        ),
        (
            "/v1/errors",
            &["code", "client", "from", "to", "limit", "cursor"],
        ),
    ];
    let mut answered = 0;
    for (route, parameters) in routes {
        for parameter in parameters {
            for attack in attacks {
                let path = format!("{route}?{parameter}={}", enc(attack));
                let (status, body) = stack.get(&path, Some(ADMIN_TOKEN)).await;
                match status {
                    400 => assert_eq!(body["parameter"], *parameter, "{path}: {body}"),
                    200 => {
                        let member = route.trim_start_matches("/v1/");
                        assert_eq!(body[member], json!([]), "{path}: {body}");
                    }
                    _ => panic!("{path}: {status} {body}"),
                }
                answered += 1;
            }
        }
    }
    for attack in attacks {
        let path = format!("/v1/sessions/{}/events", enc(attack));
        let (status, body) = stack.get(&path, Some(ADMIN_TOKEN)).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some("session_id")),
            "{path}"
        );
        for parameter in ["category", "name", "session_id", "from", "cursor"] {
            let (status, body) = stack.search(&json!({ parameter: attack })).await;
            assert!(
                status == 400 || (status == 200 && body["events"] == json!([])),
                "{parameter}={attack:?}: {status} {body}"
            );
        }
    }
    assert!(answered > 250);
    // Nothing was changed.
    let body = stack.admin(&format!("/v1/sessions/{s}/events")).await;
    assert_eq!(body["events"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn requests_without_a_valid_read_token_are_401() {
    let stack = Stack::start("q_auth", &[]).await;
    let url = stack.service.url("/v1/events");
    for request in [
        stack.http.get(&url),
        stack.http.get(&url).bearer_auth("wrong"),
        stack.http.get(&url).bearer_auth("test_shop_write_key"),
        stack
            .http
            .get(&url)
            .header("authorization", format!("Basic {ADMIN_TOKEN}")),
        stack.http.get(&url).header("authorization", ADMIN_TOKEN),
        stack
            .http
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}")),
        stack
            .http
            .post(stack.service.url("/v1/events/search"))
            .json(&json!({})),
        stack.http.get(stack.service.url("/v1/errors")),
        stack.http.get(stack.service.url("/v1/sessions")),
    ] {
        let response = request.send().await.expect("sent");
        assert_eq!(response.status().as_u16(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let (status, _) = stack.get("/v1/events", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    // The ops endpoints stay open.
    let (status, _) = answer(stack.http.get(stack.service.url("/readyz"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_silent_clickhouse_gives_504_and_an_absent_one_503() {
    // A "ClickHouse" that accepts connections and never answers.
    let (url, held) = stalling_clickhouse(Vec::new()).await;
    let (database, writer) = common::database("q_silent").await;
    let stack = Stack::start_on(database, writer, &url, &["--query-timeout", "1s"]).await;
    let started = std::time::Instant::now();
    let (status, body) = stack.get("/v1/events", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["type"], "urn:the-eye:problem:query-timeout");
    let response = stack
        .http
        .get(stack.service.url("/v1/events"))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    held.abort();

    let closed = format!("http://127.0.0.1:{}", eye_testkit::closed_port());
    let (database, writer) = common::database("q_absent").await;
    let stack = Stack::start_on(database, writer, &closed, &[]).await;
    let response = stack
        .http
        .get(stack.service.url("/v1/sessions"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

/// One `events` row in RowBinary, as ClickHouse sends it.
fn row_binary(event_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for text in [
        event_id,
        "demo",
        "e2085be5-9137-4e4e-80b5-f1ffddc25423",
        "party",
        "Open",
        "{}",
    ] {
        out.push(u8::try_from(text.len()).expect("short"));
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(&T0.to_le_bytes());
    out
}

#[tokio::test]
async fn an_export_that_fails_midway_ends_with_an_error_line_and_an_aborted_body() {
    // A "ClickHouse" that sends a first row, then nothing more.
    let row = row_binary("first");
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut answer = head.as_bytes().to_vec();
    answer.extend_from_slice(format!("{:x}\r\n", row.len()).as_bytes());
    answer.extend_from_slice(&row);
    answer.extend_from_slice(b"\r\n");
    let (url, server) = stalling_clickhouse(answer).await;
    let (database, writer) = common::database("q_midway").await;
    let stack = Stack::start_on(database, writer, &url, &["--query-timeout", "1s"]).await;
    let response = stack
        .http
        .get(stack.service.url("/v1/events"))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        response.status().as_u16(),
        200,
        "the first row came in time"
    );
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    let mut aborted = false;
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                aborted = true;
                break;
            }
        }
    }
    let text = String::from_utf8(received).expect("UTF-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["event_id"], "first");
    assert_eq!(
        lines[1]["error"]["type"], "urn:the-eye:problem:query-timeout",
        "{text}"
    );
    assert!(aborted, "the transfer must not end as if complete");
    server.abort();
}

/// A "ClickHouse" on a free port that reads each request, writes `answer`
/// (possibly nothing) and then keeps the connection open without a word more.
async fn stalling_clickhouse(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            if !answer.is_empty() {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&answer).await;
            }
            held.push(socket);
        }
    });
    (url, task)
}
