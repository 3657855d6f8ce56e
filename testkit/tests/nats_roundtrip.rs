//! JetStream through the shared test server: a stream with a duplicate
//! window, acknowledged publishes with `Nats-Msg-Id`, a durable pull consumer
//! with explicit acks. The same shape the gateway and the consumer use.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[tokio::test]
async fn publish_deduplicate_fetch_and_ack() -> TestResult {
    let nats = eye_testkit::shared_nats();
    let js = jetstream::new(nats.connect().await);
    let name = eye_testkit::unique_name("roundtrip");
    let subject = format!("{name}.events.demo");

    let mut stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;

    for i in 1..=5u64 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("event-{i}").as_str());
        headers.insert("Eye-Client", "demo");
        let ack = js
            .publish_with_headers(subject.clone(), headers, format!("{{\"n\":{i}}}").into())
            .await?
            .await?;
        assert_eq!(ack.stream, name);
        assert_eq!(ack.sequence, i);
        assert!(!ack.duplicate, "event-{i} is new");
    }

    // A retried publish of event-3 within the window is acknowledged as a
    // duplicate and not stored again.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "event-3");
    let ack = js
        .publish_with_headers(subject.clone(), headers, "{\"n\":3}".into())
        .await?
        .await?;
    assert!(ack.duplicate, "event-3 again must be a duplicate: {ack:?}");
    assert_eq!(stream.info().await?.state.messages, 5);

    let durable = eye_testkit::unique_name("workers");
    let mut consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    assert_eq!(consumer.info().await?.num_pending, 5);

    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(5))
        .messages()
        .await?;
    let mut received = BTreeMap::new();
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message?;
        let headers = message.headers.as_ref().ok_or("message without headers")?;
        let id = headers
            .get("Nats-Msg-Id")
            .ok_or("no Nats-Msg-Id")?
            .as_str()
            .to_owned();
        assert_eq!(
            headers.get("Eye-Client").map(|value| value.as_str()),
            Some("demo")
        );
        assert_eq!(message.subject.as_str(), subject);
        received.insert(id, String::from_utf8(message.payload.to_vec())?);
        messages.push(message);
    }
    let expected: BTreeMap<String, String> = (1..=5)
        .map(|i| (format!("event-{i}"), format!("{{\"n\":{i}}}")))
        .collect();
    assert_eq!(received, expected);

    let info = consumer.info().await?;
    assert_eq!(
        (info.num_pending, info.num_ack_pending),
        (0, 5),
        "delivered, not yet acked"
    );

    for message in &messages {
        // Waits for the server to confirm, so the count below is exact.
        message.double_ack().await?;
    }
    let info = consumer.info().await?;
    assert_eq!(
        (info.num_pending, info.num_ack_pending),
        (0, 0),
        "everything acknowledged"
    );
    assert_eq!(info.ack_floor.stream_sequence, 5);
    Ok(())
}

#[tokio::test]
async fn streams_of_different_tests_are_separate() -> TestResult {
    let nats = eye_testkit::shared_nats();
    let js = jetstream::new(nats.connect().await);
    let mut counts = Vec::new();
    for messages in [1u64, 3] {
        let name = eye_testkit::unique_name("isolated");
        let mut stream = js
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{name}.>")],
                ..Default::default()
            })
            .await?;
        for _ in 0..messages {
            js.publish(format!("{name}.x"), "x".into()).await?.await?;
        }
        counts.push(stream.info().await?.state.messages);
    }
    assert_eq!(counts, [1, 3]);
    Ok(())
}

#[test]
fn every_caller_gets_the_same_server() {
    let nats = eye_testkit::shared_nats();
    assert!(
        nats.url().starts_with("nats://127.0.0.1:"),
        "{}",
        nats.url()
    );
    assert!(nats.pid().is_some());
    assert!(std::ptr::eq(nats, eye_testkit::shared_nats()));
}

/// The harness's server reserves stream limits against an explicit storage
/// limit, not against 75% of the machine's free disk: a CI machine with
/// ~12 GiB free refused the services' default streams (8 GiB and two of
/// 0.8 GiB) with "insufficient storage resources available". 600 GiB is more
/// than most test machines have free, and well within the harness's 1 TB.
#[tokio::test]
async fn stream_limits_do_not_depend_on_the_free_disk() -> TestResult {
    let nats = eye_testkit::NatsServer::start()?;
    let js = jetstream::new(nats.connect().await);
    let info = js
        .create_stream(stream::Config {
            name: "BIG".to_owned(),
            subjects: vec!["big.>".to_owned()],
            storage: stream::StorageType::File,
            max_bytes: 600 * 1024 * 1024 * 1024,
            ..Default::default()
        })
        .await?
        .info()
        .await?
        .clone();
    assert_eq!(info.config.max_bytes, 600 * 1024 * 1024 * 1024);
    Ok(())
}

/// A storage limit and a configuration file of the caller's contradict each
/// other (the file's `jetstream` block decides): refused before starting.
#[test]
fn a_storage_limit_with_a_configuration_file_is_refused() {
    let started = eye_testkit::NatsServer::builder()
        .config_file("/nonexistent/nats.conf")
        .max_file_store("64MB")
        .start();
    assert!(
        matches!(started, Err(eye_testkit::HarnessError::InvalidOptions(_))),
        "{started:?}"
    );
}
