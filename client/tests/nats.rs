//! The direct-NATS transport against the real stack: events published to
//! JetStream with the gateway's subjects, headers and dedup ids are stored by
//! the consumer once, whichever way (and however often) they were sent.

mod common;

use std::time::{Duration, Instant};

use common::{
    CLIENT, Outage, Stack, WRITE_KEY, fast_retries, party, quick_batches, send_across_outage,
    sentinel, session_events, wait_for_events,
};
use eye_client::{Client, ErrorFilter, EventFilter, RetryPolicy, Uuid};
use futures::TryStreamExt;

async fn nats_client(stack: &Stack, retry: RetryPolicy) -> Client {
    Client::builder()
        .nats(stack.nats.connect().await, CLIENT)
        .query_url(stack.query.url(""))
        .read_token(common::READ_TOKEN)
        .batching(quick_batches(50))
        .retry(retry)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_are_stored_once_and_share_ids_with_the_gateway() {
    let stack = Stack::start("client_nats").await;
    let client = nats_client(&stack, fast_retries()).await;
    let session = Uuid::new_v4();
    let mut receipts = Vec::new();
    for n in 0..100 {
        let mut event = party(session, n);
        if n == 50 {
            // Not valid: the consumer records it as a reject.
            event.category = "no such category".into();
        }
        receipts.push(client.send(event).await.expect("queued"));
    }
    let mut ids = Vec::new();
    for (n, receipt) in receipts.into_iter().enumerate() {
        let accepted = receipt.await.expect("acknowledged by JetStream");
        let n = i64::try_from(n).expect("small");
        if n != 50 {
            assert_eq!(accepted.event_id, party(session, n).id_for(CLIENT));
        }
        ids.push(accepted.event_id);
    }
    let stored = wait_for_events(&client, EventFilter::default().session(session), 99).await;
    assert!(stored.iter().all(|e| e.client_id == CLIENT));
    assert!(!stored.iter().any(|e| e.event_id == ids[50]));

    // The same events again through NATS, and through the gateway: the
    // dedup id is the same, so nothing new is stored.
    for n in 0..10 {
        client.enqueue(party(session, n)).await.expect("queued");
    }
    client.flush().await.expect("flush");
    let gateway = stack
        .builder()
        .write_key(WRITE_KEY)
        .build()
        .expect("gateway client");
    for n in 10..20 {
        let accepted = gateway
            .send(party(session, n))
            .await
            .expect("queued")
            .await
            .expect("accepted by the gateway");
        assert_eq!(accepted.event_id, ids[usize::try_from(n).expect("small")]);
    }
    gateway.close().await.expect("close");
    sentinel(&stack, session).await;
    let all = session_events(&client, session).await;
    assert_eq!(all.len(), 100, "99 events and the sentinel, no copies");

    // The invalid one is recorded by the consumer.
    let started = Instant::now();
    loop {
        let rejects: Vec<_> = client
            .errors(ErrorFilter::default().client(CLIENT))
            .try_collect()
            .await
            .expect("errors");
        let session_text = session.to_string();
        if let Some(reject) = rejects.iter().find(|r| r.session_id == session_text) {
            assert_eq!(reject.code, "unknown_category");
            assert_eq!(reject.source, "consumer");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "reject not recorded: {rejects:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await.expect("close");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_ride_out_a_nats_restart() {
    let mut stack = Stack::start("client_nats_restart").await;
    let client = nats_client(
        &stack,
        RetryPolicy {
            request_timeout: Duration::from_secs(2),
            ..fast_retries()
        },
    )
    .await;
    let session = Uuid::new_v4();
    send_across_outage(&mut stack, &client, session, 40, Outage::Kill).await;
    client.close().await.expect("close");
    sentinel(&stack, session).await;
    let all = session_events(&client, session).await;
    assert_eq!(all.len(), 42, "41 events and the sentinel, each once");
    stack.stop().await;
}

/// The demo client's own NATS connection under the shipped permissions: its
/// user may publish only `eye.events.demo.>` and receives acks on
/// `_INBOX.demo.>`, so the connection uses that inbox prefix.
async fn demo_connection(stack: &Stack) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .user_and_password(CLIENT.into(), common::NATS_DEMO_PASSWORD.into())
        .custom_inbox_prefix(format!("_INBOX.{CLIENT}"))
        .connect(stack.nats.url())
        .await
        .expect("connect as demo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_publisher_under_the_shipped_nats_permissions() {
    let stack = Stack::start_secured("client_nats_auth").await;
    let client = Client::builder()
        .nats(demo_connection(&stack).await, CLIENT)
        .batching(quick_batches(50))
        .retry(fast_retries())
        .build()
        .expect("client");
    let session = Uuid::new_v4();
    let mut receipts = Vec::new();
    for n in 0..30 {
        receipts.push(client.send(party(session, n)).await.expect("queued"));
    }
    for receipt in receipts {
        receipt.await.expect("acknowledged under the demo user");
    }
    client.close().await.expect("close");
    let stored =
        wait_for_events(&stack.reader(), EventFilter::default().session(session), 30).await;
    assert!(stored.iter().all(|e| e.client_id == CLIENT));

    // Publishing as another client is refused by NATS: no acknowledgement
    // ever comes, so the event ends as given up (a timeout), never accepted.
    let impostor = Client::builder()
        .nats(demo_connection(&stack).await, "other")
        .retry(RetryPolicy {
            max_retries: 1,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
            request_timeout: Duration::from_secs(1),
        })
        .build()
        .expect("client");
    let refused = impostor
        .send(party(session, 500))
        .await
        .expect("queued")
        .await;
    match refused {
        Err(eye_client::SendError::GaveUp { attempts: 2, .. }) => {}
        other => panic!("expected to give up, got {other:?}"),
    }
    impostor.close().await.expect("close");
    sentinel(&stack, session).await;
    assert_eq!(
        session_events(&stack.reader(), session).await.len(),
        31,
        "30 events and the sentinel; nothing from the impostor"
    );
    stack.stop().await;
}
