//! Reading events, sessions and rejects from a real ClickHouse (18.16 here)
//! through the service running as the read-only user.

mod common;

use common::{event, ids, reject, Stack, ADMIN_TOKEN, SHOP_TOKEN, T0};
use eye_contract::Timestamp;
use serde_json::json;
use uuid::Uuid;

fn at(us: i64) -> String {
    Timestamp::from_micros(us).to_rfc3339()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn events_come_in_order_of_occurrence_with_inclusive_exclusive_bounds() {
    let stack = Stack::start("q_order", &[]).await;
    let s = Uuid::new_v4();
    // Microseconds apart, inserted out of order and in several parts; two
    // events at the same microsecond are ordered by id.
    stack
        .insert(&[
            event(s, "e3", "party", "Click", T0 + 3),
            event(s, "e0", "party", "Open", T0),
        ])
        .await;
    stack
        .insert(&[
            event(s, "e2b", "page view", "View", T0 + 2),
            event(s, "e1", "party", "Click", T0 + 1),
        ])
        .await;
    stack
        .insert(&[
            event(s, "e9", "party", "Close", T0 + 1_000_000),
            event(s, "e2a", "party", "Click", T0 + 2),
        ])
        .await;
    stack
        .insert(&[event(Uuid::new_v4(), "other", "party", "Open", T0 + 2)])
        .await;

    let body = stack.admin(&format!("/v1/sessions/{s}/events")).await;
    let rows = body["events"].as_array().expect("events");
    assert_eq!(ids(rows), ["e0", "e1", "e2a", "e2b", "e3", "e9"]);
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    let first = &rows[0];
    assert_eq!(first["timestamp"], "2021-09-26T09:15:27.000000Z");
    assert_eq!(rows[1]["timestamp"], "2021-09-26T09:15:27.000001Z");
    assert_eq!(first["session_id"], s.to_string());
    assert_eq!(
        first["data"],
        json!({"id": "e0", "n": 1}),
        "data is an object"
    );
    assert_eq!(
        (first["category"].as_str(), first["name"].as_str()),
        (Some("party"), Some("Open"))
    );

    // [from, to): from is included, to is not, to the microsecond; both
    // timestamp spellings are accepted.
    let path = format!(
        "/v1/sessions/{s}/events?from={}&to={}",
        enc(&at(T0 + 1)),
        enc("2021-09-26 09:15:27.000003")
    );
    assert_eq!(
        ids(stack.admin(&path).await["events"]
            .as_array()
            .expect("events")),
        ["e1", "e2a", "e2b"]
    );

    // The same through the category table, and by name, and via search.
    let path = format!(
        "/v1/events?category=party&from={}&to={}",
        enc(&at(T0)),
        enc(&at(T0 + 3))
    );
    assert_eq!(
        ids(stack.admin(&path).await["events"]
            .as_array()
            .expect("events")),
        ["e0", "e1", "e2a", "other"]
    );
    let path = format!("/v1/events?name=Click&session_id={s}");
    assert_eq!(
        ids(stack.admin(&path).await["events"]
            .as_array()
            .expect("events")),
        ["e1", "e2a", "e3"]
    );
    let path = format!("/v1/events?category={}", enc("page view"));
    assert_eq!(
        ids(stack.admin(&path).await["events"]
            .as_array()
            .expect("events")),
        ["e2b"]
    );
    let (status, body) = stack
        .search(&json!({"category": "party", "from": at(T0 + 1), "to": "2021-09-26 09:15:27.000003", "limit": 100}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(body["events"].as_array().expect("events")),
        ["e1", "e2a", "other"]
    );

    // Requests by route and status, and query latency, are measured.
    let metrics = stack
        .http
        .get(stack.service.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("metrics");
    for series in [
        r#"eye_query_http_requests_total{route="/v1/sessions/{session_id}/events",status="200"} 2"#,
        r#"eye_query_query_duration_seconds_count{route="/v1/events/search"} 1"#,
        r#"eye_query_rows_total{route="/v1/events"} 8"#,
    ] {
        assert!(metrics.contains(series), "{series} missing in:\n{metrics}");
    }
}

#[tokio::test]
async fn pages_of_ten_cover_25_events_without_gaps_or_repeats_even_while_events_arrive() {
    let stack = Stack::start("q_pages", &[]).await;
    let s = Uuid::new_v4();
    let mut rows: Vec<_> = (0..25)
        .map(|i| event(s, &format!("e{i:02}"), "party", "Click", T0 + i * 7))
        .collect();
    rows.reverse();
    stack.insert(&rows).await;
    let expected: Vec<String> = (0..25).map(|i| format!("e{i:02}")).collect();

    for path in [
        format!("/v1/sessions/{s}/events?limit=10"),
        "/v1/events?category=party&limit=10".to_owned(),
    ] {
        let pages = stack.all_pages(&path, "events").await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5], "{path}");
        let seen: Vec<String> = pages.iter().flat_map(|p| ids(p)).collect();
        assert_eq!(seen, expected, "{path}");
    }

    // New events arrive between pages: one before the first page's end
    // (already passed: not shown, nothing shifts), some after it (shown).
    let path = format!("/v1/sessions/{s}/events?limit=10");
    let first = stack.admin(&path).await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_owned();
    stack
        .insert(&[
            event(s, "early", "party", "Click", T0 + 1),
            event(s, "late1", "party", "Click", T0 + 100),
            event(s, "late2", "party", "Click", T0 + 1_000),
        ])
        .await;
    let mut seen = ids(first["events"].as_array().expect("events"));
    let rest = stack
        .pages_from(&path, "events", Some(cursor.clone()))
        .await;
    seen.extend(rest.iter().flat_map(|p| ids(p)));
    let mut want = expected.clone();
    want.extend(["late1".to_owned(), "late2".to_owned()]);
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    want.sort();
    assert_eq!(
        sorted_seen, want,
        "every event once, the late ones included: {seen:?}"
    );

    // A cursor only works with the filters that produced it.
    let (status, body) = stack
        .get(
            &format!("/v1/events?category=party&limit=10&cursor={cursor}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (400, Some("cursor")),
        "{body}"
    );
}

/// Stops background merges of `tables` in the stack's database, so copies
/// stay in separate parts for as long as the test reads them.
async fn stop_merges(stack: &Stack, tables: &[&str]) {
    for table in tables {
        stack
            .writer
            .query(&format!("SYSTEM STOP MERGES {table}"))
            .execute()
            .await
            .expect("merges stop");
    }
}

/// Rows stored in `table` (copies included) and its active parts.
async fn stored(stack: &Stack, table: &str) -> (u64, u64) {
    let rows: u64 = stack
        .writer
        .query(&format!("SELECT count() FROM {table}"))
        .fetch_one()
        .await
        .expect("count");
    let parts: u64 = stack
        .writer
        .query("SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active")
        .bind(&stack.database)
        .bind(table)
        .fetch_one()
        .await
        .expect("parts");
    (rows, parts)
}

#[tokio::test]
async fn duplicate_rows_are_returned_once() {
    let stack = Stack::start("q_dups", &[]).await;
    // No merge may remove a copy while we read: what is proven here is the
    // read-side dedup alone, as right after a redelivery.
    stop_merges(&stack, &["events", "events_by_category", "event_errors"]).await;
    let s = Uuid::new_v4();
    let rows: Vec<_> = (0..5)
        .map(|i| event(s, &format!("d{i}"), "party", "Click", T0 + i))
        .collect();
    let rejects: Vec<_> = (0..3)
        .map(|i| reject(&format!("r{i}"), "demo", "invalid_timestamp", T0 + i))
        .collect();
    // Three inserts of the same rows: three parts, each holding every row.
    for _ in 0..3 {
        stack.insert(&rows).await;
        stack.insert_errors(&rejects).await;
    }
    for table in ["events", "events_by_category"] {
        assert_eq!(stored(&stack, table).await, (15, 3), "{table}");
    }
    assert_eq!(stored(&stack, "event_errors").await, (9, 3));

    let want = ["d0", "d1", "d2", "d3", "d4"];
    let body = stack.admin(&format!("/v1/sessions/{s}/events")).await;
    assert_eq!(ids(body["events"].as_array().expect("events")), want);
    let body = stack.admin("/v1/events?category=party").await;
    assert_eq!(ids(body["events"].as_array().expect("events")), want);
    let body = stack
        .admin(&format!("/v1/events?session_id={s}&name=Click"))
        .await;
    assert_eq!(ids(body["events"].as_array().expect("events")), want);
    // Pages of 2: a copy never takes a row's place in a page.
    for path in [
        format!("/v1/sessions/{s}/events?limit=2"),
        "/v1/events?category=party&limit=2".to_owned(),
    ] {
        let pages = stack.all_pages(&path, "events").await;
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1],
            "{path}"
        );
        assert_eq!(
            pages.iter().flat_map(|p| ids(p)).collect::<Vec<_>>(),
            want,
            "{path}"
        );
    }
    let body = stack.admin("/v1/sessions").await;
    assert_eq!(body["sessions"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["sessions"][0]["events"], 5, "{body}");
    let body = stack.admin("/v1/sessions?category=party").await;
    assert_eq!(body["sessions"][0]["events"], 5, "{body}");
    // A range of two hours is listed from events_by_category, one of a week
    // from events: both count each event once.
    for hours in [1, 84] {
        let range = format!(
            "from={}&to={}",
            enc(&at(T0 - hours * 3_600_000_000)),
            enc(&at(T0 + hours * 3_600_000_000))
        );
        for path in [
            format!("/v1/sessions?{range}"),
            format!("/v1/sessions?{range}&category=party"),
        ] {
            let body = stack.admin(&path).await;
            assert_eq!(
                body["sessions"].as_array().map(Vec::len),
                Some(1),
                "{path}: {body}"
            );
            assert_eq!(body["sessions"][0]["events"], 5, "{path}: {body}");
        }
    }
    let body = stack.admin("/v1/errors").await;
    let errors = body["errors"].as_array().expect("errors");
    let reject_ids: Vec<_> = errors.iter().map(|r| r["reject_id"].clone()).collect();
    assert_eq!(
        reject_ids,
        [json!("r0"), json!("r1"), json!("r2")],
        "{body}"
    );
    let pages = stack.all_pages("/v1/errors?limit=2", "errors").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let range = format!(
        "from={}&to={}",
        enc(&at(T0 - 3_600_000_000)),
        enc(&at(T0 + 3_600_000_000))
    );
    let body = stack
        .admin(&format!("/v1/stats/events_per_hour?{range}"))
        .await;
    assert_eq!(body["hours"][0]["events"], 5, "{body}");
    let body = stack
        .admin(&format!("/v1/stats/errors_per_hour?{range}"))
        .await;
    assert_eq!(body["hours"][0]["errors"], 3, "{body}");
    let ndjson = stack
        .http
        .get(stack.service.url(&format!("/v1/sessions/{s}/events")))
        .bearer_auth(ADMIN_TOKEN)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert_eq!(ndjson.lines().count(), 5, "{ndjson}");
    // Still unmerged: the reads above deduplicated on their own.
    assert_eq!(stored(&stack, "events").await, (15, 3));
    assert_eq!(stored(&stack, "event_errors").await, (9, 3));
}

#[tokio::test]
async fn sessions_summarise_their_events_in_the_range() {
    let stack = Stack::start("q_sessions", &[]).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    stack
        .insert(&[
            event(a, "a1", "party", "Open", T0 + 10),
            event(a, "a2", "page view", "View", T0 + 20),
            event(a, "a3", "party", "Close", T0 + 30),
            event(b, "b1", "page view", "View", T0 + 15),
            event(b, "b2", "page view", "View", T0 + 5_000_000),
        ])
        .await;
    let body = stack.admin("/v1/sessions").await;
    let sessions = body["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["session_id"], a.to_string());
    assert_eq!(sessions[0]["first"], at(T0 + 10));
    assert_eq!(sessions[0]["last"], at(T0 + 30));
    assert_eq!(sessions[0]["events"], 3);
    assert_eq!(sessions[0]["categories"], json!(["page view", "party"]));
    assert_eq!(sessions[1]["events"], 2);

    let path = format!(
        "/v1/sessions?category=party&to={}",
        enc(&at(T0 + 1_000_000))
    );
    let body = stack.admin(&path).await;
    assert_eq!(body["sessions"].as_array().map(Vec::len), Some(1), "{body}");
    let path = format!("/v1/sessions?from={}", enc(&at(T0 + 16)));
    let body = stack.admin(&path).await;
    assert_eq!(body["sessions"][0]["session_id"], a.to_string());
    assert_eq!(
        body["sessions"][0]["first"],
        at(T0 + 20),
        "counts only the range"
    );
    assert_eq!(body["sessions"][1]["events"], 1);

    let pages = stack.all_pages("/v1/sessions?limit=1", "sessions").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
}

#[tokio::test]
async fn rejects_by_time_code_and_client_and_scoped_tokens() {
    let stack = Stack::start("q_errors", &[]).await;
    stack
        .insert_errors(&[
            reject("r1", "demo", "invalid_timestamp", T0 + 1),
            reject("r2", "shop", "schema_violation", T0 + 2),
            reject("r3", "shop", "invalid_timestamp", T0 + 3),
            reject("r3", "shop", "invalid_timestamp", T0 + 3),
        ])
        .await;
    let reject_ids = |body: &serde_json::Value| -> Vec<String> {
        body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|r| r["reject_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let body = stack.admin("/v1/errors").await;
    assert_eq!(reject_ids(&body), ["r1", "r2", "r3"]);
    assert_eq!(body["errors"][0]["received"], at(T0 + 1));
    assert_eq!(body["errors"][0]["raw_truncated"], false);
    assert_eq!(
        reject_ids(&stack.admin("/v1/errors?code=invalid_timestamp").await),
        ["r1", "r3"]
    );
    assert_eq!(
        reject_ids(&stack.admin("/v1/errors?client=shop").await),
        ["r2", "r3"]
    );
    let path = format!(
        "/v1/errors?from={}&to={}",
        enc(&at(T0 + 2)),
        enc(&at(T0 + 3))
    );
    assert_eq!(reject_ids(&stack.admin(&path).await), ["r2"]);
    let pages = stack.all_pages("/v1/errors?limit=2", "errors").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);

    // A token of scope `own` sees its client's rows only.
    let (status, body) = stack.get("/v1/errors", Some(SHOP_TOKEN)).await;
    assert_eq!(
        (status, reject_ids(&body)),
        (200, vec!["r2".to_owned(), "r3".to_owned()])
    );
    let (status, body) = stack.get("/v1/errors?client=demo", Some(SHOP_TOKEN)).await;
    assert_eq!(status, 403, "{body}");
    let s = Uuid::new_v4();
    let mut theirs = event(s, "shop1", "party", "Open", T0);
    theirs.client_id = "shop".to_owned();
    stack
        .insert(&[theirs, event(s, "demo1", "party", "Open", T0 + 1)])
        .await;
    let (status, body) = stack
        .get(&format!("/v1/sessions/{s}/events"), Some(SHOP_TOKEN))
        .await;
    assert_eq!(
        (status, ids(body["events"].as_array().expect("events"))),
        (200, vec!["shop1".to_owned()])
    );
    let (_, body) = stack.get("/v1/sessions", Some(SHOP_TOKEN)).await;
    assert_eq!(body["sessions"][0]["events"], 1, "{body}");
}

#[tokio::test]
async fn ndjson_pages_end_with_a_cursor_line() {
    let stack = Stack::start("q_ndjson", &[]).await;
    let s = Uuid::new_v4();
    stack
        .insert(
            &(0..5)
                .map(|i| event(s, &format!("n{i}"), "party", "Click", T0 + i))
                .collect::<Vec<_>>(),
        )
        .await;
    let get = |path: String| {
        let request = stack
            .http
            .get(stack.service.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .header("accept", "application/x-ndjson");
        async move {
            let response = request.send().await.expect("sent");
            assert_eq!(response.headers()["content-type"], "application/x-ndjson");
            let text = response.text().await.expect("body");
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
                .collect::<Vec<_>>()
        }
    };
    let lines = get(format!("/v1/sessions/{s}/events?limit=3")).await;
    assert_eq!(lines.len(), 4);
    assert_eq!(ids(&lines[..3]), ["n0", "n1", "n2"]);
    assert_eq!(lines[0]["data"]["id"], "n0");
    let cursor = lines[3]["next_cursor"].as_str().expect("cursor line");
    let lines = get(format!("/v1/sessions/{s}/events?limit=3&cursor={cursor}")).await;
    assert_eq!(ids(&lines), ["n3", "n4"]);
}
