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
    // fill() fails the test if the stream never refuses.
    let stored = fill(&js).await;
    let mut events = js.get_stream(eye_contract::EVENTS_STREAM).await.unwrap();
    let info = events.info().await.unwrap();
    assert_eq!(info.state.messages, stored, "nothing stored was dropped");
    assert_eq!(info.state.first_sequence, 1);
}

/// Publishes padded events until JetStream refuses one; returns how many it took.
async fn fill(js: &async_nats::jetstream::Context) -> u64 {
    let subject = eye_contract::events_subject("demo", "party");
    let mut stored = 0u64;
    for i in 0..100 {
        let body = format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(200));
        let sent = js
            .publish(subject.clone(), body.into())
            .await
            .expect("publish sent");
        match sent.await {
            Ok(_) => stored += 1,
            Err(_) => return stored,
        }
    }
    panic!("the stream took 100 events without filling");
}

#[tokio::test]
async fn an_events_stream_made_with_another_retention_is_kept_and_updated() {
    use async_nats::jetstream::stream::RetentionPolicy;

    let nats = eye_testkit::NatsServer::start().expect("start nats-server");
    let js = async_nats::jetstream::new(nats.connect().await);
    // As a development build with work-queue retention created it.
    let old = async_nats::jetstream::stream::Config {
        retention: RetentionPolicy::WorkQueue,
        ..args(1024 * 1024).events_config()
    };
    js.create_stream(old).await.unwrap();
    create_or_update_streams(&js, &args(2 * 1024 * 1024))
        .await
        .expect("an existing stream with another retention is not an error");
    let mut stream = js.get_stream(eye_contract::EVENTS_STREAM).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.retention, RetentionPolicy::WorkQueue);
    assert_eq!(
        config.max_bytes,
        2 * 1024 * 1024,
        "the other settings are updated"
    );
    assert_eq!(
        args(1).events_config().retention,
        RetentionPolicy::Limits,
        "new streams keep messages until they age out"
    );
}

/// A server whose storage cannot hold the byte limit refuses the stream, and
/// the error says what to change, with the limit asked for.
#[tokio::test]
async fn a_limit_beyond_the_servers_storage_is_a_specific_error() {
    let nats = eye_testkit::NatsServer::builder()
        .max_file_store("64MB")
        .start()
        .expect("start nats-server");
    let js = async_nats::jetstream::new(nats.connect().await);

    let error = create_or_update_streams(&js, &args(1024 * 1024 * 1024))
        .await
        .expect_err("1 GiB does not fit in 64 MB");
    assert!(error.is_out_of_storage(), "{error:?}");
    let message = error.to_string();
    for part in [
        eye_contract::EVENTS_STREAM,
        "1073741824 bytes",
        "max_file_store",
        "EYE_STREAM_MAX_BYTES",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }

    // Within the storage the same server takes them.
    create_or_update_streams(&js, &args(32 * 1024 * 1024))
        .await
        .expect("32 MiB and two side streams of 3.2 MiB fit in 64 MB");
}
