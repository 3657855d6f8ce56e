//! The client against the real gateway, NATS, consumer, ClickHouse and query
//! service: per-event results, HMAC signing, retries through a NATS outage,
//! flush on close, one request per event.

mod common;

use std::time::{Duration, Instant};

use common::{
    CLIENT, Outage, SECRET, Stack, WRITE_KEY, party, quick_batches, send_across_outage, sentinel,
    session_events, wait_for_events,
};
use eye_client::{
    BatchConfig, ClientError, ErrorCode, ErrorFilter, Event, EventFilter, SendError, Timestamp,
    Uuid,
};
use futures::TryStreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_invalid_events_gets_one_result_per_event() {
    let stack = Stack::start("client_results").await;
    let client = stack
        .builder()
        .write_key(WRITE_KEY)
        .batching(BatchConfig {
            max_events: 10,
            linger: Duration::from_secs(60),
            ..Default::default()
        })
        .build()
        .expect("client");
    let session = Uuid::new_v4();
    let future = Event::new(
        session,
        "party",
        "AppName",
        Timestamp::now().saturating_add(Duration::from_secs(3600)),
    );
    let mut unknown = party(session, 2);
    unknown.category = "no such category".into();
    let events = [party(session, 0), future, unknown, party(session, 3)];
    let mut receipts = Vec::new();
    for event in events.iter().cloned() {
        receipts.push(client.send(event).await.expect("queued"));
    }
    // The linger is a minute: flush sends the batch now.
    client.flush().await.expect("flush");
    let stats = client.stats();
    assert_eq!(stats.requests, 1, "one batch, one request: {stats:?}");
    assert_eq!((stats.accepted, stats.rejected, stats.failed), (2, 2, 0));

    let mut results = Vec::new();
    for receipt in receipts {
        results.push(receipt.await);
    }
    // The gateway derives the same id as the client computes.
    let accepted = results[0].as_ref().expect("first accepted");
    assert_eq!(accepted.event_id, events[0].id_for(CLIENT));
    match &results[1] {
        Err(SendError::Rejected(r)) => {
            assert_eq!(r.error_code(), Some(ErrorCode::TimestampInFuture));
            assert_eq!(r.pointer, "/timestamp");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    match &results[2] {
        Err(SendError::Rejected(r)) => assert_eq!(r.code, "unknown_category"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        results[3].as_ref().expect("last accepted").event_id,
        events[3].id_for(CLIENT)
    );

    // Stored: exactly the two valid events, in order.
    let reader = stack.reader();
    let stored = wait_for_events(&reader, EventFilter::default().session(session), 2).await;
    let ids: Vec<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            accepted.event_id.as_str(),
            results[3].as_ref().expect("ok").event_id.as_str()
        ]
    );
    assert_eq!(
        stored[0].data,
        json!({"host": "www.party.com", "path": "/0"})
    );
    // The rejects are recorded, readable through the client.
    let started = Instant::now();
    loop {
        let rejects: Vec<_> = reader
            .errors(ErrorFilter::default().client(CLIENT))
            .try_collect()
            .await
            .expect("read errors");
        let mine: Vec<_> = rejects
            .iter()
            .filter(|r| r.session_id == session.to_string())
            .collect();
        if mine.len() == 2 {
            let mut codes: Vec<&str> = mine.iter().map(|r| r.code.as_str()).collect();
            codes.sort_unstable();
            assert_eq!(codes, ["timestamp_in_future", "unknown_category"]);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "rejects not recorded: {rejects:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await.expect("close");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_are_accepted_and_a_wrong_secret_is_refused() {
    let stack = Stack::start("client_hmac").await;
    let session = Uuid::new_v4();
    for gzip in [false, true] {
        let client = stack
            .builder()
            .hmac(CLIENT, SECRET)
            .gzip(gzip)
            .batching(quick_batches(100))
            .build()
            .expect("client");
        let receipts = futures::future::join_all((0..20).map(|n| {
            let client = client.clone();
            async move { client.send(party(session, n)).await.expect("queued").await }
        }))
        .await;
        for r in &receipts {
            assert!(r.is_ok(), "gzip {gzip}: {r:?}");
        }
        client.close().await.expect("close");
    }
    // Both rounds sent the same 20 events: stored once each.
    sentinel(&stack, session).await;
    let stored = session_events(&stack.reader(), session).await;
    assert_eq!(stored.len(), 21, "20 events and the sentinel, each once");

    let wrong = stack
        .builder()
        .hmac(CLIENT, "not the secret")
        .build()
        .expect("client");
    let result = wrong.send(party(session, 99)).await.expect("queued").await;
    match result {
        Err(SendError::Refused { status: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    let stats = wrong.stats();
    assert_eq!(
        (stats.failed, stats.requests),
        (1, 1),
        "not retried: {stats:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_while_nats_is_down_are_retried_and_stored_once() {
    let mut stack = Stack::start("client_retry").await;
    let client = stack
        .builder()
        .write_key(WRITE_KEY)
        .batching(quick_batches(25))
        .build()
        .expect("client");
    let session = Uuid::new_v4();
    send_across_outage(&mut stack, &client, session, 100, Outage::Stop).await;
    let stats = client.stats();
    assert!(stats.retried > 0 && stats.requests > 5, "{stats:?}");
    assert_eq!((stats.accepted, stats.failed), (101, 0));

    // Resending the same events (what a retry after a lost answer does) adds nothing.
    for n in 0..=100 {
        client.enqueue(party(session, n)).await.expect("queued");
    }
    client.close().await.expect("close");
    assert_eq!(client.stats().accepted, 202);
    let reader = stack.reader();
    sentinel(&stack, session).await;
    let stored = session_events(&reader, session).await;
    assert_eq!(stored.len(), 102, "101 events and the sentinel, each once");
    let mut ids: Vec<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 102);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_sends_everything_queued_and_later_sends_fail() {
    let stack = Stack::start("client_close").await;
    let client = stack
        .builder()
        .write_key(WRITE_KEY)
        // Nothing would go out for a minute without close.
        .batching(BatchConfig {
            max_events: 10_000,
            linger: Duration::from_secs(60),
            ..Default::default()
        })
        .build()
        .expect("client");
    let session = Uuid::new_v4();
    for n in 0..300 {
        client.enqueue(party(session, n)).await.expect("queued");
    }
    let closing = Instant::now();
    client.close().await.expect("close");
    assert!(
        closing.elapsed() < Duration::from_secs(30),
        "close took {:?}",
        closing.elapsed()
    );
    let stats = client.stats();
    assert_eq!(
        (stats.queued, stats.accepted, stats.pending()),
        (300, 300, 0)
    );
    assert!(matches!(
        client.send(party(session, 0)).await,
        Err(ClientError::Closed)
    ));
    assert!(matches!(client.flush().await, Err(ClientError::Closed)));
    // Closing twice is fine.
    client.close().await.expect("second close");
    let stored = wait_for_events(
        &stack.reader(),
        EventFilter::default().session(session),
        300,
    )
    .await;
    assert_eq!(stored.len(), 300);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_per_event_with_several_in_flight() {
    let stack = Stack::start("client_single").await;
    let client = stack
        .builder()
        .write_key(WRITE_KEY)
        .batching(BatchConfig {
            max_events: 1,
            linger: Duration::ZERO,
            concurrency: 8,
            ..Default::default()
        })
        .build()
        .expect("client");
    let session = Uuid::new_v4();
    let mut receipts = Vec::new();
    for n in 0..50 {
        receipts.push(client.send(party(session, n)).await.expect("queued"));
    }
    for receipt in receipts {
        receipt.await.expect("accepted");
    }
    let stats = client.stats();
    assert_eq!((stats.requests, stats.accepted), (50, 50), "{stats:?}");
    client.close().await.expect("close");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_the_gateway_finds_too_large_are_split() {
    // The gateway takes at most 8 events per request; the client batches 50.
    let stack = Stack::start_with("client_split", &["--max-events-per-request", "8"]).await;
    let client = stack
        .builder()
        .write_key(WRITE_KEY)
        .batching(BatchConfig {
            max_events: 50,
            linger: Duration::from_secs(60),
            ..Default::default()
        })
        .build()
        .expect("client");
    let session = Uuid::new_v4();
    for n in 0..50 {
        client.enqueue(party(session, n)).await.expect("queued");
    }
    client.flush().await.expect("flush");
    let stats = client.stats();
    // 50 -> 25+25 -> 13+12 (x2) -> 7+6 (x4): 1 + 2 + 4 + 8 requests.
    assert_eq!(
        (stats.accepted, stats.failed, stats.requests),
        (50, 0, 15),
        "{stats:?}"
    );

    // A single event larger than the body limit is refused, not retried.
    let big = party(session, 99)
        .with_data(json!({"host": "h", "path": "/", "pad": "x".repeat(2 * 1024 * 1024)}))
        .expect("object");
    match client.send(big).await.expect("queued").await {
        Err(SendError::Refused { status: 413, .. }) => {}
        other => panic!("expected 413, got {other:?}"),
    }
    client.close().await.expect("close");
    stack.stop().await;
}
