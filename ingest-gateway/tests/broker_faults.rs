//! The gateway when NATS goes away, comes back, or its stream is full. Each
//! test owns its NATS server: it stops it, or shrinks the (fixed-name) stream.

mod common;

use std::time::{Duration, Instant};

use common::{messages, wait_for_messages};
use eye_contract::EVENTS_STREAM;
use eye_testkit::NatsServer;
use serde_json::{json, Value};

fn party(n: usize) -> Value {
    json!({"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "party",
           "name": "AppName", "data": {"host": "www.party.com", "path": format!("/{n}")},
           "timestamp": "2021-09-26 09:15:27.243860"})
}

#[tokio::test]
async fn nats_stopped_gives_503_then_ingestion_resumes_when_it_is_back() {
    let mut nats = NatsServer::start().expect("nats-server");
    let gw = common::start(&nats.url(), &["--publish-timeout", "1s"]).await;
    assert_eq!(gw.send(&party(1)).await.status, 202);

    nats.stop().expect("stop nats");
    let started = Instant::now();
    let answer = gw.send(&json!([party(2), {"bad": 1}])).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.content_type, "application/problem+json");
    assert!(answer.retry_after.is_some(), "{answer:?}");
    assert!(
        took < Duration::from_millis(1500),
        "answered within the publish timeout: {took:?}"
    );
    assert_eq!(answer.body["results"][0]["status"], "failed");
    assert_eq!(
        answer.body["results"][1]["status"], "rejected",
        "rejects are still reported"
    );
    gw.service
        .wait_for_status("/readyz", 503, Duration::from_secs(5))
        .await;

    nats.start_again().expect("restart nats");
    gw.service
        .wait_for_status("/readyz", 200, Duration::from_secs(20))
        .await;
    let answer = gw.send(&party(2)).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let client = nats.connect().await;
    let stored = messages(&client, EVENTS_STREAM, &gw.events_filter()).await;
    assert_eq!(
        stored.len(),
        2,
        "the event before the outage and the one after"
    );
    assert!(
        gw.metric("eye_gateway_events_failed_total{code=\"broker_unavailable\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_gateway_started_before_nats_creates_the_streams_when_it_comes() {
    let mut nats = NatsServer::start().expect("nats-server");
    nats.stop().expect("stop nats");
    let gw = common::start_unready(&nats.url(), &[]).await;
    assert_eq!(gw.get("/readyz").await.status, 503);
    assert_eq!(gw.send(&party(1)).await.status, 503);

    nats.start_again().expect("start nats");
    gw.service
        .wait_for_status("/readyz", 200, Duration::from_secs(20))
        .await;
    assert_eq!(gw.send(&party(1)).await.status, 202);
    let client = nats.connect().await;
    wait_for_messages(
        &client,
        EVENTS_STREAM,
        &gw.events_filter(),
        1,
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test]
async fn a_full_stream_refuses_with_a_retryable_code_and_keeps_what_it_holds() {
    let nats = NatsServer::start().expect("nats-server");
    let gw = common::start(&nats.url(), &["--stream-max-bytes", "4096"]).await;
    let mut accepted = 0;
    let mut refusal = None;
    for n in 0..200 {
        let answer = gw.send(&party(n)).await;
        match answer.status {
            202 => accepted += 1,
            _ => {
                refusal = Some(answer);
                break;
            }
        }
    }
    let refusal = refusal.expect("the stream fills up");
    assert!(accepted > 0);
    assert_eq!(refusal.status, 503, "{refusal:?}");
    assert!(refusal.retry_after.is_some());
    assert_eq!(refusal.body["results"][0]["status"], "failed");
    assert_eq!(refusal.body["results"][0]["code"], "stream_full");

    let client = nats.connect().await;
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream(EVENTS_STREAM).await.expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(
        info.state.messages, accepted,
        "every accepted event is kept"
    );
    assert_eq!(info.state.first_sequence, 1, "nothing old was dropped");
    assert_eq!(
        messages(&client, EVENTS_STREAM, &gw.events_filter())
            .await
            .len() as u64,
        accepted
    );
}
