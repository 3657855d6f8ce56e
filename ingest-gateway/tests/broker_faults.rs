//! The gateway when NATS goes away, comes back, or its stream is full. Each
//! test owns its NATS server: it stops it, or shrinks the (fixed-name) stream.

mod common;

use std::time::{Duration, Instant};

use common::{messages, party, wait_for_messages};
use eye_contract::EVENTS_STREAM;
use eye_server_kit::jetstream::REJECTS_STREAM;
use eye_testkit::NatsServer;
use serde_json::json;

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

#[tokio::test]
async fn a_deleted_stream_is_set_up_again_without_a_restart() {
    let nats = NatsServer::start().expect("nats-server");
    let gw = common::start(&nats.url(), &[]).await;
    assert_eq!(gw.send(&party(1)).await.status, 202);
    let client = nats.connect().await;
    async_nats::jetstream::new(client.clone())
        .delete_stream(EVENTS_STREAM)
        .await
        .expect("delete the stream");

    let answer = gw.send(&party(2)).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.body["results"][0]["code"], "broker_unavailable");
    // That publish made the gateway check, find the stream missing, and set
    // it up again: the same event is then accepted.
    let started = Instant::now();
    loop {
        let answer = gw.send(&party(2)).await;
        if answer.status == 202 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still refused 10 s after the stream was deleted: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.service
        .wait_for_status("/readyz", 200, Duration::from_secs(10))
        .await;
    wait_for_messages(
        &client,
        EVENTS_STREAM,
        &gw.events_filter(),
        1,
        Duration::from_secs(5),
    )
    .await;
}

/// Freezes (SIGSTOP) or thaws (SIGCONT) a process: a broker that is connected
/// but does not answer.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test]
async fn unacknowledged_events_time_out_and_shutdown_lets_the_request_finish() {
    let nats = NatsServer::start().expect("nats-server");
    let pid = nats.pid().expect("nats pid");
    let gw = common::start(&nats.url(), &["--publish-timeout", "1500ms"]).await;
    assert_eq!(gw.send(&party(1)).await.status, 202);

    signal(pid, "-STOP");
    let url = gw.service.url("/v1/events");
    let key = gw.key.clone();
    let in_flight = tokio::spawn(async move {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(party(2).to_string())
            .send()
            .await
            .expect("answered despite the shutdown");
        (started.elapsed(), common::answer(response).await)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SIGTERM while the request waits for its ack: it must still be answered.
    let common::Gateway { service, .. } = gw;
    let stopping = tokio::spawn(service.stop(Duration::from_secs(15)));
    let (took, answer) = in_flight.await.expect("request task");
    signal(pid, "-CONT");
    assert_eq!(
        answer.status,
        503,
        "after {took:?}: {answer:?}\nnats-server: {}",
        nats.log_tail()
    );
    assert_eq!(answer.body["results"][0]["code"], "publish_timeout");
    assert!(answer.retry_after.is_some());
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(3000),
        "answered at the publish timeout: {took:?}"
    );
    stopping.await.expect("the gateway stops cleanly");
}

#[tokio::test]
async fn past_the_in_flight_bound_requests_are_refused_not_queued() {
    let nats = NatsServer::start().expect("nats-server");
    let pid = nats.pid().expect("nats pid");
    let gw = common::start(
        &nats.url(),
        &[
            "--publish-timeout",
            "5s",
            "--max-events-per-request",
            "2",
            "--max-inflight-publishes",
            "2",
        ],
    )
    .await;
    signal(pid, "-STOP");
    // The first request holds both permits while it waits for acks that do not come.
    let url = gw.service.url("/v1/events");
    let key = gw.key.clone();
    let holding = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(json!([party(1), party(2)]).to_string())
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16()
    });
    let started = Instant::now();
    let refused = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if gw.metric("eye_gateway_inflight_publishes").await == 2.0 {
            break gw.send(&party(3)).await;
        }
        // Well inside the publish timeout, also on a busy machine.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the first request never got in"
        );
    };
    signal(pid, "-CONT");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.body["results"][0]["code"], "overloaded");
    assert!(refused.retry_after.is_some());
    // Thawed before its deadline, the first request is stored after all (or times out).
    let first = holding.await.expect("first request");
    assert!(first == 202 || first == 503, "{first}");
    assert_eq!(gw.metric("eye_gateway_inflight_publishes").await, 0.0);
}

#[tokio::test]
async fn a_reject_that_cannot_be_recorded_yet_is_tried_again() {
    let nats = NatsServer::start().expect("nats-server");
    let gw = common::start(&nats.url(), &[]).await;
    let client = nats.connect().await;
    async_nats::jetstream::new(client.clone())
        .delete_stream(REJECTS_STREAM)
        .await
        .expect("delete the rejects stream");

    // The good event is accepted; its neighbour's reject finds no stream. The
    // gateway sets the streams up again and records the reject on a retry.
    let mut bad = party(2);
    bad["session_id"] = json!("not-a-uuid");
    let answer = gw.send(&json!([party(1), bad])).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.body["results"][1]["code"], "invalid_session_id");
    let js = async_nats::jetstream::new(client.clone());
    let started = Instant::now();
    while js.get_stream(REJECTS_STREAM).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the rejects stream was not set up again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recorded = wait_for_messages(
        &client,
        REJECTS_STREAM,
        &gw.rejects_filter(),
        1,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        gw.metric("eye_gateway_reject_publish_failures_total").await,
        0.0
    );
}

/// A NATS server without room for the stream limits: the gateway stays
/// unready and `/readyz` says why and what to change.
#[tokio::test]
async fn a_stream_limit_nats_cannot_reserve_is_explained_by_readyz() {
    let nats = NatsServer::builder()
        .max_file_store("64MB")
        .start()
        .expect("nats-server");
    let gw = common::start_unready(&nats.url(), &["--stream-max-bytes", "1073741824"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        let ready = gw.get("/readyz").await;
        assert_eq!(ready.status, 503, "{ready:?}");
        let streams = ready.body["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|check| check["name"] == "streams"))
            .cloned()
            .unwrap_or_default();
        if let Some(error) = streams["error"]
            .as_str()
            .filter(|e| e.contains("not set up yet: "))
        {
            break error.to_owned();
        }
        assert!(Instant::now() < deadline, "no reason in /readyz: {ready:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for part in [
        "insufficient storage resources",
        "1073741824 bytes",
        "EYE_STREAM_MAX_BYTES",
    ] {
        assert!(error.contains(part), "{part:?} missing from: {error}");
    }
    assert_eq!(gw.send(&party(1)).await.status, 503);
}
