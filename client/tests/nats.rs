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
