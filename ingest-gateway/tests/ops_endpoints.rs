//! The gateway's operations endpoints against a real NATS server.

mod common;

use std::time::Duration;

#[tokio::test]
async fn healthy_ready_with_metrics_and_stops_on_shutdown() {
    let gateway = common::start(&eye_testkit::shared_nats().url(), &[]).await;
    let metrics = gateway.get("/metrics").await;
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    for name in [
        "eye_gateway_build_info",
        "eye_gateway_events_accepted_total",
        "eye_gateway_inflight_publishes",
        "eye_gateway_publish_duration_seconds",
    ] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
    gateway.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn alive_but_not_ready_while_nats_is_unreachable() {
    let closed = eye_testkit::closed_port();
    let gateway = common::start_unready(&format!("nats://127.0.0.1:{closed}"), &[]).await;
    let readyz = gateway.get("/readyz").await;
    assert_eq!(readyz.status, 503);
    assert_eq!(readyz.body["ready"], false);
    assert_eq!(readyz.body["checks"][0]["name"], "nats");
    assert_eq!(readyz.body["checks"][1]["name"], "streams");

    // Events cannot be stored: a fast, retryable refusal.
    let started = std::time::Instant::now();
    let answer = gateway
        .post_raw(
            "/v1/events",
            "application/json",
            false,
            common::fixture("party.json"),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.content_type, "application/problem+json");
    assert!(answer.retry_after.is_some());
    assert_eq!(answer.body["results"][0]["code"], "broker_unavailable");

    gateway.service.stop(Duration::from_secs(5)).await;
}
