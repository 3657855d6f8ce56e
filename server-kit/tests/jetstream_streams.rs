//! The streams against a real NATS server: idempotent creation, updates, discard-new.

use std::time::Duration;

use eye_server_kit::jetstream::{
    create_or_update_streams, StreamArgs, DEADLETTER_STREAM, REJECTS_STREAM,
};

fn args(max_bytes: i64) -> StreamArgs {
    StreamArgs {
        max_age: Duration::from_secs(3600),
        max_bytes,
        duplicate_window: Duration::from_secs(120),
        replicas: 1,
    }
}

#[tokio::test]
async fn streams_are_created_updated_and_refuse_publishers_when_full() {
    // Stream names are fixed, so this test owns a NATS server of its own.
    let nats = eye_testkit::NatsServer::start().expect("start nats-server");
    let js = async_nats::jetstream::new(nats.connect().await);

    create_or_update_streams(&js, &args(64 * 1024 * 1024))
        .await
        .unwrap();
    create_or_update_streams(&js, &args(64 * 1024 * 1024))
        .await
        .unwrap();
    for name in [
        eye_contract::EVENTS_STREAM,
        REJECTS_STREAM,
        DEADLETTER_STREAM,
    ] {
        let info = js
            .get_stream(name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(
            info.config.duplicate_window,
            Duration::from_secs(120),
            "{name}"
        );
    }

    // Shrink the events stream to almost nothing: it must refuse new messages
    // rather than drop the ones it holds.
    create_or_update_streams(&js, &args(2048)).await.unwrap();
    let subject = eye_contract::events_subject("demo", "party");
    let mut stored = 0u64;
    let mut refused = false;
    for i in 0..100 {
        let body = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(200));
        match js
            .publish(subject.clone(), body.into())
            .await
            .unwrap()
            .await
        {
            Ok(_) => stored += 1,
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "a full stream must refuse publishers");
    let mut events = js.get_stream(eye_contract::EVENTS_STREAM).await.unwrap();
    let info = events.info().await.unwrap();
    assert_eq!(info.state.messages, stored, "nothing stored was dropped");
    assert_eq!(info.state.first_sequence, 1);
}
