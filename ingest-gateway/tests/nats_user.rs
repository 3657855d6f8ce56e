//! The gateway as NATS user eye_gateway on a server with the shipped permissions
//! (deploy/nats/local.conf): it sets its streams up (ready), and an event is
//! accepted, which it answers only after JetStream acknowledged it. Without
//! credentials it never becomes ready.

mod common;

use std::path::Path;
use std::time::Duration;

use eye_testkit::NatsServer;

#[tokio::test]
async fn the_gateway_publishes_as_its_nats_user_under_the_shipped_permissions() {
    let password = eye_testkit::unique_name("gateway_password");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/local.conf");
    let nats = NatsServer::builder()
        .config_file(config)
        .env("EYE_NATS_PORT", "4222")
        .env("EYE_NATS_MONITOR_PORT", "8222")
        .env("EYE_NATS_GATEWAY_PASSWORD", &password)
        .env("EYE_NATS_CONSUMER_PASSWORD", "consumer_password_unused")
        .env("EYE_NATS_DEMO_PASSWORD", "demo_password_unused")
        .start()
        .unwrap_or_else(|error| panic!("starting nats-server with local.conf: {error}"));

    let gateway = common::start(
        &nats.url(),
        &[
            "--nats-user",
            "eye_gateway",
            "--nats-password",
            &password,
            // JetStream reserves a stream's bytes against the free disk.
            "--stream-max-bytes",
            "67108864",
        ],
    )
    .await;
    let accepted = gateway.send(&common::party(1)).await;
    assert_eq!(
        accepted.status,
        202,
        "{:?}\n{}",
        accepted.body,
        nats.log_tail()
    );
    assert_eq!(accepted.body["accepted"], 1, "{}", accepted.body);
    gateway.service.stop(Duration::from_secs(10)).await;

    // Without credentials the server refuses the connection: never ready.
    let anonymous = common::start_unready(&nats.url(), &[]).await;
    let ready = anonymous.get("/readyz").await;
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    let refused = anonymous.send(&common::party(2)).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    anonymous.service.stop(Duration::from_secs(10)).await;
}
