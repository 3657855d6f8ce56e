//! The consumer end to end against real NATS JetStream and ClickHouse 18.16:
//! what is published is stored exactly once with exact values, invalid events
//! and gateway rejects land in event_errors, redeliveries and outages create no
//! duplicates visible to readers, poison messages are parked without blocking
//! their batch, and instances share the work.
//!
//! Each test starts its own nats-server (the stream names are fixed) and uses
//! its own ClickHouse database on the binary's shared server; the outage test
//! has a ClickHouse server of its own.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use consumer::rows::{ErrorRow, EventRow};
use consumer::sql;
use eye_contract::{derive_event_id, ErrorCode, EventError, Reject, RejectSource, Timestamp};
use eye_testkit::ClickHouseServer;
use serde_json::{json, Value};
use uuid::Uuid;

/// `(subject, body)` of one published message.
type Message = (String, Vec<u8>);

const EVENTS_FINAL: &str = "SELECT count() FROM events FINAL";
const ERRORS_FINAL: &str = "SELECT count() FROM event_errors FINAL";
const EVENTS_RAW: &str = "SELECT count() FROM events";

/// The row the consumer must write for `event` (built by [`party_event`]).
fn expected_row(client: &str, event: &Value) -> EventRow {
    let session_id = Uuid::parse_str(event["session_id"].as_str().expect("session")).expect("uuid");
    let data = event["data"].as_object().expect("data").clone();
    let ts = Timestamp::parse(event["timestamp"].as_str().expect("timestamp")).expect("time");
    EventRow {
        event_id: derive_event_id(client, &session_id, "party", "AppName", &data, ts),
        client_id: client.to_owned(),
        session_id,
        category: "party".to_owned(),
        name: "AppName".to_owned(),
        data: serde_json::to_string(&data).expect("json"),
        timestamp: u32::try_from(ts.as_micros() / 1_000_000).expect("fits"),
        timestamp_us: ts.as_micros(),
        // Filled from what JetStream recorded; compared separately.
        received_at: 0,
        received_us: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_are_stored_exactly_once_with_exact_values() {
    let stack = Stack::new("exact").await;
    let (js, client) = (&stack.js, &stack.client);
    let service = start(stack.config(&[])).await;

    let sessions: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let events: Vec<Value> = (0..10_000u32)
        .map(|i| party_event(i, sessions[i as usize % sessions.len()]))
        .collect();
    let started = Instant::now();
    publish(js, events.iter().map(|e| message("demo", e)).collect()).await;
    let published = started.elapsed();

    wait_for_count(client, EVENTS_FINAL, 10_000).await;
    let stored = started.elapsed();
    eprintln!(
        "10,000 events: published in {published:?}, all stored after {stored:?} ({:.0} events/s end to end)",
        10_000.0 / stored.as_secs_f64()
    );
    // No redelivery happened, so not even a physical duplicate exists.
    assert_eq!(count(client, EVENTS_RAW).await, 10_000);

    let mut rows = client
        .query("SELECT ?fields FROM events FINAL ORDER BY timestamp_us")
        .fetch_all::<EventRow>()
        .await
        .expect("read rows");
    assert_eq!(rows.len(), 10_000);
    for (row, event) in rows.iter_mut().zip(&events) {
        // JetStream's receive time: after the test started, consistent in both columns.
        assert!(row.received_us >= BASE_US, "{row:?}");
        assert_eq!(
            i64::from(row.received_at),
            row.received_us.div_euclid(1_000_000)
        );
        row.received_at = 0;
        row.received_us = 0;
        assert_eq!(*row, expected_row("demo", event));
    }
    // ClickHouse itself sees UTC seconds and the unicode text byte for byte.
    let (time_text, data_bytes, path): (String, u64, String) = client
        .query("SELECT toString(timestamp), length(data), visitParamExtractString(data, 'path') FROM events WHERE timestamp_us = ?")
        .bind(BASE_US)
        .fetch_one()
        .await
        .expect("first event");
    assert_eq!(time_text, "2021-09-26 09:15:27");
    let first_data = serde_json::to_string(&events[0]["data"]).expect("json");
    assert_eq!(data_bytes, first_data.len() as u64);
    assert_eq!(path, "/日本語/0/✓🎉 \"q\" \\ é");

    // The recommended session read: that session's events, in time order, once each.
    let session = client
        .query(&sql::statement(sql::READ_SESSION))
        .bind(sessions[3].to_string())
        .fetch_all::<SessionRead>()
        .await
        .expect("session read");
    assert_eq!(session.len(), 1000);
    assert!(session
        .windows(2)
        .all(|w| w[0].timestamp_us < w[1].timestamp_us));
    // The category read (events_by_category, filled by the materialized view).
    let category = client
        .query(&sql::statement(sql::READ_CATEGORY))
        .bind("party")
        .bind(BASE_US)
        .bind(BASE_US + 100 * 1_000_003)
        .fetch_all::<SessionRead>()
        .await
        .expect("category read");
    assert_eq!(category.len(), 100);

    let status = status(&service).await;
    assert_eq!(status["events_stored"], 10_000, "{status}");
    assert_eq!(status["schema_version"], 3, "{status}");
    assert!(metric(&service, "eye_consumer_events_stored_total").await >= 10_000.0);
    let text = reqwest::get(service.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "eye_consumer_batch_size_bucket",
        "eye_consumer_insert_duration_seconds_count{table=\"events\"}",
        "eye_consumer_lag_pending_messages{consumer=\"eye-consumer\"}",
        "eye_consumer_lag_ack_pending_messages{consumer=\"eye-consumer\"}",
        "eye_consumer_dead_letter_depth_messages",
        "eye_consumer_last_insert_timestamp_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    service.stop(Duration::from_secs(10)).await;
}

/// The columns of the recommended reads.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
#[allow(dead_code)]
struct SessionRead {
    event_id: String,
    client_id: String,
    #[serde(with = "clickhouse::serde::uuid")]
    session_id: Uuid,
    category: String,
    name: String,
    data: String,
    timestamp_us: i64,
    received_us: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_publishes_are_validated_into_events_and_event_errors() {
    let stack = Stack::new("direct").await;
    let (js, client) = (&stack.js, &stack.client);
    let service = start(stack.config(&[])).await;

    let session = Uuid::new_v4();
    let valid = party_event(1, session);
    let mut with_id = party_event(2, session);
    with_id["event_id"] = json!("client-id-42");
    let future = Timestamp::now()
        .saturating_add(Duration::from_secs(3600))
        .to_rfc3339();
    let with = |field: &str, value: Value| {
        let mut event = party_event(3, session);
        event[field] = value;
        event
    };
    let mut unknown_field = party_event(4, session);
    unknown_field["colour"] = json!("red");
    let mut missing = party_event(5, session);
    missing.as_object_mut().expect("object").remove("name");
    let raw = |subject: &str, body: &[u8]| (subject.to_owned(), body.to_vec());
    let cases: Vec<(Message, Option<&str>)> = vec![
        (message("web", &valid), None),
        (message("web", &with_id), None),
        (
            raw("eye.events.web.party", b"{not json"),
            Some("invalid_json"),
        ),
        (message("web", &missing), Some("missing_field")),
        (message("web", &unknown_field), Some("unknown_field")),
        (
            message("web", &with("session_id", json!("nope"))),
            Some("invalid_session_id"),
        ),
        (
            message("web", &with("timestamp", json!(future))),
            Some("timestamp_in_future"),
        ),
        (
            message("web", &with("timestamp", json!("yesterday"))),
            Some("invalid_timestamp"),
        ),
        (
            message("web", &with("data", json!({"host": "h"}))),
            Some("schema_violation"),
        ),
        (
            message("web", &with("data", json!([1]))),
            Some("invalid_type"),
        ),
        // A category with no schema, on its own (valid) subject token.
        (
            message("web", &with("category", json!("nope"))),
            Some("unknown_category"),
        ),
        // A valid event on another category's subject: the subject must not lie.
        (
            raw(
                "eye.events.web.page_20interaction",
                &serde_json::to_vec(&valid).expect("json"),
            ),
            Some("invalid_subject"),
        ),
    ];
    publish(js, cases.iter().map(|(m, _)| m.clone()).collect()).await;

    let rejects = cases.iter().filter(|(_, code)| code.is_some()).count() as u64;
    wait_for_count(client, ERRORS_FINAL, rejects).await;
    wait_for_count(client, EVENTS_FINAL, 2).await;

    let ids: Vec<String> = client
        .query("SELECT event_id FROM events FINAL ORDER BY timestamp_us")
        .fetch_all()
        .await
        .expect("ids");
    assert_eq!(ids[1], "client-id-42");
    let clients: Vec<String> = client
        .query("SELECT DISTINCT client_id FROM events")
        .fetch_all()
        .await
        .expect("clients");
    assert_eq!(clients, ["web"], "the client comes from the subject");

    let errors = client
        .query("SELECT ?fields FROM event_errors FINAL")
        .fetch_all::<ErrorRow>()
        .await
        .expect("errors");
    let mut got: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = cases.iter().filter_map(|(_, code)| *code).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    for error in &errors {
        assert_eq!(error.source, "consumer");
        assert_eq!(error.client_id, "web");
        assert!(!error.message.is_empty());
        assert!(!error.raw.is_empty());
        if error.code == "invalid_session_id" {
            assert_eq!(error.session_id, "nope");
            assert_eq!(error.pointer, "/session_id");
            assert_eq!(error.category, "party");
        }
    }
    let rejects_metric = metric(&service, "eye_consumer_rejects_total").await;
    assert_eq!(rejects_metric, rejects as f64);
    service.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_rejects_are_recorded_once_in_event_errors() {
    let stack = Stack::new("gwrejects").await;
    let (js, client) = (&stack.js, &stack.client);
    let service = start(stack.config(&[])).await;

    let reject = |code: ErrorCode, body: &[u8]| {
        Reject::new(
            RejectSource::Gateway,
            "demo",
            Timestamp::from_micros(BASE_US),
            &EventError::new(code, format!("{code} happened"), "/x"),
            body,
            serde_json::from_slice(body).ok().as_ref(),
            4096,
        )
    };
    let first = reject(
        ErrorCode::TimestampInFuture,
        br#"{"category":"party","session_id":"s1"}"#,
    );
    let second = reject(ErrorCode::EventTooLarge, b"xxxx");
    let body = |r: &Reject| serde_json::to_vec(r).expect("json");
    publish(
        js,
        vec![
            ("eye.rejects.demo".to_owned(), body(&first)),
            ("eye.rejects.demo".to_owned(), body(&second)),
            // The same record again, as after a gateway retry: stored once.
            ("eye.rejects.demo".to_owned(), body(&first)),
            (
                "eye.rejects.demo".to_owned(),
                b"not a reject record".to_vec(),
            ),
        ],
    )
    .await;

    wait_for_count(client, ERRORS_FINAL, 3).await;
    let rows = client
        .query("SELECT ?fields FROM event_errors FINAL ORDER BY code")
        .fetch_all::<ErrorRow>()
        .await
        .expect("rows");
    let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(
        codes,
        ["event_too_large", "invalid_json", "timestamp_in_future"]
    );
    let future = &rows[2];
    assert_eq!(future.reject_id, first.reject_id);
    assert_eq!(future.source, "gateway");
    assert_eq!(future.client_id, "demo");
    assert_eq!(future.category, "party");
    assert_eq!(future.session_id, "s1");
    assert_eq!(future.received_us, BASE_US);
    assert_eq!(rows[1].source, "gateway");
    assert_eq!(rows[1].raw, "not a reject record");

    // Readers see each reject once with the recommended read as well.
    let read = client
        .query(&sql::statement(sql::READ_ERRORS))
        .bind(0u32)
        .bind(u32::MAX)
        .fetch_all::<ErrorRead>()
        .await
        .expect("errors read");
    assert_eq!(read.len(), 3);
    assert!(read
        .iter()
        .any(|r| r.reject_id == first.reject_id && r.raw_truncated == 0));
    service.stop(Duration::from_secs(10)).await;
}

/// The columns of the recommended errors read.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
#[allow(dead_code)]
struct ErrorRead {
    reject_id: String,
    source: String,
    client_id: String,
    received_us: i64,
    code: String,
    message: String,
    pointer: String,
    category: String,
    session_id: String,
    event_id: String,
    raw: String,
    raw_truncated: u8,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stored_but_never_acked_is_redelivered_and_readers_see_it_once() {
    let stack = Stack::new("redeliver").await;
    let (js, client) = (&stack.js, &stack.client);
    let timing = ["--ack-wait", "2s", "--insert-timeout", "1s"];

    // The first consumer stores everything and dies before acking (simulated).
    let mut flags = timing.to_vec();
    flags.push("--fault-skip-acks");
    let crashing = stack.consumer(&flags).await;
    // Merges could fold the copies away on their own; stop them so the test
    // proves what readers see *before* any merge.
    client
        .query(&format!("SYSTEM STOP MERGES {}.events", stack.database))
        .execute()
        .await
        .expect("stop merges");

    let session = Uuid::new_v4();
    let events: Vec<Value> = (0..500).map(|i| party_event(i, session)).collect();
    publish(js, events.iter().map(|e| message("demo", e)).collect()).await;
    wait_for_count(client, EVENTS_FINAL, 500).await;
    crashing.stop(Duration::from_secs(10)).await;

    // A healthy consumer gets the unacked messages again after the ack wait.
    let healthy = start(stack.config(&timing)).await;
    wait_for(
        "all redelivered and acked",
        Duration::from_secs(30),
        || async {
            let info = consumer_info(js).await;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return Ok(());
            }
            Err(format!(
                "pending {} ack-pending {}",
                info.num_pending, info.num_ack_pending
            ))
        },
    )
    .await;

    // At least two physical copies of every event (each was stored by both
    // instances), one for every reader.
    let raw = count(client, EVENTS_RAW).await;
    assert!(raw >= 1000, "{raw} physical rows");
    assert_eq!(count(client, EVENTS_FINAL).await, 500);
    assert_eq!(
        count(client, "SELECT count() FROM (SELECT event_id FROM events ORDER BY timestamp_us LIMIT 1 BY session_id, timestamp_us, client_id, event_id)").await,
        500
    );
    let read = client
        .query(&sql::statement(sql::READ_SESSION))
        .bind(session.to_string())
        .fetch_all::<SessionRead>()
        .await
        .expect("session read");
    let distinct: std::collections::HashSet<&str> =
        read.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(read.len(), 500);
    assert_eq!(distinct.len(), 500);
    assert_eq!(
        count(client, "SELECT count() FROM events_by_category FINAL").await,
        500
    );
    assert!(metric(&healthy, "eye_consumer_redeliveries_total").await >= 500.0);
    healthy.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_down_during_a_burst_loses_nothing_and_parks_nothing() {
    let own = ClickHouseServer::start().unwrap_or_else(|error| panic!("clickhouse: {error}"));
    let stack = Stack::on(&own, "outage").await;
    let (js, client) = (&stack.js, &stack.client);
    let service = stack
        .consumer(&["--batch-size", "200", "--retry-min", "50ms"])
        .await;

    let session = Uuid::new_v4();
    let events: Vec<Value> = (0..3000).map(|i| party_event(i, session)).collect();
    let messages: Vec<(String, Vec<u8>)> = events.iter().map(|e| message("demo", e)).collect();
    let (before, during) = messages.split_at(1000);
    // The burst runs on while ClickHouse goes down.
    let burst = {
        let (js, before) = (js.clone(), before.to_vec());
        tokio::spawn(async move {
            for chunk in before.chunks(100) {
                publish(&js, chunk.to_vec()).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    stack.wait_for_first_rows().await;
    let mut own = tokio::task::spawn_blocking(move || {
        let mut own = own;
        own.stop().expect("stop clickhouse");
        own
    })
    .await
    .expect("join");
    burst.await.expect("burst published");
    // More events while ClickHouse is down (JetStream takes them regardless).
    publish(js, during.to_vec()).await;

    // Not ready, and the answer names ClickHouse and the failing inserts.
    let body = wait_for("readyz 503", Duration::from_secs(10), || async {
        let response = reqwest::get(service.url("/readyz"))
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if status == 503 && body.contains("inserts into ClickHouse are failing") {
            Ok(body)
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await;
    assert!(body.contains(r#""name":"clickhouse","ok":false"#), "{body}");
    // Down for a while: retries back off, nothing is acked, nothing parked.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let info = consumer_info(js).await;
    assert!(
        info.num_ack_pending > 0,
        "the batch is kept in hand: {info:?}"
    );
    // /status tells what is at risk: messages waiting, and for how long.
    let at_risk = wait_for("lag in /status", Duration::from_secs(5), || async {
        let status = status(&service).await;
        let waiting = status["events"]["ack_pending"].as_u64().unwrap_or(0);
        match status["events"]["oldest_pending_age_seconds"].as_f64() {
            Some(age) if waiting > 0 && age > 0.0 => Ok(status),
            _ => Err(status.to_string()),
        }
    })
    .await;
    assert!(at_risk["insert_error"].is_string(), "{at_risk}");
    assert!(at_risk["last_insert_at"].is_string(), "{at_risk}");

    let own = tokio::task::spawn_blocking(move || {
        own.start_again().expect("restart clickhouse");
        own
    })
    .await
    .expect("join");
    wait_for_count(client, EVENTS_FINAL, 3000).await;
    service
        .wait_for_status("/readyz", 200, Duration::from_secs(20))
        .await;

    assert_eq!(count(client, "SELECT count() FROM event_errors").await, 0);
    let dead = js
        .get_stream(eye_server_kit::jetstream::DEADLETTER_STREAM)
        .await
        .expect("dead-letter stream")
        .get_info()
        .await
        .expect("info")
        .state
        .messages;
    assert_eq!(dead, 0, "nothing dead-lettered");
    assert_eq!(
        metric(&service, "eye_consumer_dead_letters_total").await,
        0.0
    );
    assert!(metric(&service, "eye_consumer_insert_failures_total").await > 0.0);
    service.stop(Duration::from_secs(10)).await;
    drop(own);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_and_their_neighbours_stored() {
    let stack = Stack::new("poison").await;
    let (js, client) = (&stack.js, &stack.client);
    // A short ack wait: nats-server 2.9.10 sometimes never hands over the
    // redelivery of a message nacked with a delay (it counts the delivery, and
    // sends an already delivered message once more instead); JetStream
    // delivers it again after the ack wait (5 of 20 runs; with the default
    // 60 s that outlasts the waits below).
    let service = stack
        .consumer(&[
            "--max-deliver",
            "2",
            "--retry-min",
            "50ms",
            "--insert-timeout",
            "4s",
            "--ack-wait",
            "5s",
        ])
        .await;
    // ClickHouse refuses any insert holding an event named "poison" (the
    // guard view runs after the table write, so the refused row lands in
    // events too; what matters here is that the consumer isolates and parks it).
    client
        .query("CREATE MATERIALIZED VIEW poison_guard ENGINE = Memory AS SELECT throwIf(name = 'poison') AS refused FROM events")
        .execute()
        .await
        .expect("guard view");

    let session = Uuid::new_v4();
    let mut messages: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| message("demo", &party_event(i, session)))
        .collect();
    let mut poison = party_event(100, session);
    poison["name"] = json!("poison");
    messages.insert(20, message("demo", &poison));
    // Not an events subject a client could have: unparsable, parked at once.
    messages.insert(10, ("eye.events.demo.bad_zz".to_owned(), b"{}".to_vec()));
    publish(js, messages).await;

    wait_for_count(
        client,
        "SELECT count() FROM events FINAL WHERE name = 'AppName'",
        40,
    )
    .await;
    wait_for_count(client, ERRORS_FINAL, 2).await;
    let codes: Vec<(String, String)> = client
        .query("SELECT code, client_id FROM event_errors FINAL ORDER BY code")
        .fetch_all()
        .await
        .expect("codes");
    assert_eq!(
        codes,
        [
            ("invalid_subject".to_owned(), "demo".to_owned()),
            ("storage_failed".to_owned(), "demo".to_owned())
        ]
    );

    let dead = js
        .get_stream(eye_server_kit::jetstream::DEADLETTER_STREAM)
        .await
        .expect("dead-letter stream");
    let mut parked = BTreeMap::new();
    for sequence in 1..=2 {
        let message = dead.get_raw_message(sequence).await.expect("dead letter");
        let reason = message
            .headers
            .get(eye_contract::headers::REJECT_REASON)
            .map(|v| v.to_string())
            .unwrap_or_default();
        parked.insert(
            message.subject.to_string(),
            (reason, message.payload.clone()),
        );
    }
    let (reason, payload) = &parked["eye.deadletter.demo.bad_zz"];
    assert!(reason.starts_with("invalid_subject: "), "{reason}");
    assert_eq!(&payload[..], b"{}");
    let (reason, payload) = &parked["eye.deadletter.demo.party"];
    assert!(reason.starts_with("storage_failed: "), "{reason}");
    assert_eq!(
        &payload[..],
        &serde_json::to_vec(&poison).expect("json")[..]
    );
    assert_eq!(
        metric(&service, "eye_consumer_dead_letters_total").await,
        2.0
    );
    wait_for(
        "dead-letter depth in /status",
        Duration::from_secs(5),
        || async {
            let status = status(&service).await;
            if status["dead_letter_depth"] == 2 {
                Ok(())
            } else {
                Err(status.to_string())
            }
        },
    )
    .await;
    service.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_the_total_is_exact() {
    let stack = Stack::new("shared").await;
    let (js, client) = (&stack.js, &stack.client);
    let flags = ["--batch-size", "50"];
    let first = stack.consumer(&flags).await;
    let second = stack.consumer(&flags).await;

    let sessions: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let events: Vec<Value> = (0..4000u32)
        .map(|i| party_event(i, sessions[i as usize % 4]))
        .collect();
    publish(js, events.iter().map(|e| message("demo", e)).collect()).await;

    wait_for_count(client, EVENTS_FINAL, 4000).await;
    // An instance counts a batch in /status just after ClickHouse confirmed
    // it, so its last batch may be readable before it is counted.
    let rows = count(client, EVENTS_RAW).await;
    let (a, b) = wait_for(
        "every stored row counted by one of the instances",
        Duration::from_secs(10),
        || async {
            let a = status(&first).await["events_stored"].as_u64().unwrap_or(0);
            let b = status(&second).await["events_stored"].as_u64().unwrap_or(0);
            if a + b == rows {
                Ok((a, b))
            } else {
                Err(format!("{a} + {b} of {rows} rows"))
            }
        },
    )
    .await;
    eprintln!("instance shares: {a} + {b}");
    assert!(a > 0 && b > 0, "both instances worked: {a} + {b}");
    first.stop(Duration::from_secs(10)).await;
    second.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_batch_in_hand() {
    let stack = Stack::new("shutdown").await;
    let (js, client) = (&stack.js, &stack.client);
    let flags = ["--batch-size", "500"];
    let service = stack.consumer(&flags).await;

    let session = Uuid::new_v4();
    let events: Vec<Value> = (0..5000).map(|i| party_event(i, session)).collect();
    publish(js, events.iter().map(|e| message("demo", e)).collect()).await;
    stack.wait_for_first_rows().await;
    service.stop(Duration::from_secs(10)).await;

    // Everything delivered was stored and acked before the consumer returned:
    // nothing is left waiting for an ack, and the rows are exactly the acked messages.
    // (The server applies acks asynchronously: give it a moment to count them.)
    let info = wait_for("acks applied", Duration::from_secs(10), || async {
        let info = consumer_info(js).await;
        if info.num_ack_pending == 0 {
            Ok(info)
        } else {
            Err(format!("{info:?}"))
        }
    })
    .await;
    let acked = 5000 - info.num_pending;
    assert_eq!(count(client, EVENTS_FINAL).await, acked);
    eprintln!("stopped after {acked} of 5000 events");

    // A new instance takes up the rest.
    let service = start(stack.config(&flags)).await;
    wait_for_count(client, EVENTS_FINAL, 5000).await;
    service.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_is_trimmed_once_its_events_are_stored() {
    let stack = Stack::new("trim").await;
    let small = ["--stream-max-bytes", "200000"];
    let js = &stack.js;
    eye_server_kit::jetstream::create_or_update_streams(
        js,
        &eye_testkit::service::parse_config(&small),
    )
    .await
    .expect("shrink the events stream");

    // No consumer yet: publish until the stream refuses (a few hundred fit).
    let session = Uuid::new_v4();
    let mut stored = 0u32;
    let refusal = loop {
        assert!(stored < 5000, "the stream never filled");
        let (subject, body) = message("demo", &party_event(stored, session));
        match js.publish(subject, body.into()).await {
            Ok(ack) => match ack.await {
                Ok(_) => stored += 1,
                Err(error) => break error.to_string(),
            },
            Err(error) => break error.to_string(),
        }
    };
    assert!(stored > 100, "only {stored} events fit: {refusal}");

    // The consumer stores them all, then trims what it acknowledged: the
    // stream takes events again without waiting for them to age out.
    let service = stack.consumer(&small).await;
    wait_for_count(&stack.client, EVENTS_FINAL, u64::from(stored)).await;
    let next = message("demo", &party_event(stored, session));
    wait_for(
        "a publish accepted after the trim",
        Duration::from_secs(20),
        || async {
            let ack = js
                .publish(next.0.clone(), next.1.clone().into())
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map(|_| ()).map_err(|e| e.to_string())
        },
    )
    .await;
    let trimmed = metric(&service, "eye_consumer_stream_trimmed_messages_total").await;
    assert!(
        trimmed >= f64::from(stored) / 2.0,
        "trimmed {trimmed} of {stored} stored events"
    );
    wait_for_count(&stack.client, EVENTS_FINAL, u64::from(stored) + 1).await;
    assert_eq!(
        count(&stack.client, EVENTS_RAW).await,
        u64::from(stored) + 1
    );
    service.stop(Duration::from_secs(10)).await;
}
