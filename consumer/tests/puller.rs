//! The puller against a real nats-server: a batch that does not fill is handed
//! on at the batch wait, not when the server gets round to answering the
//! expired pull request, and nothing it delivers later is lost.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use consumer::puller::Puller;
use eye_testkit::NatsServer;

const BATCH_WAIT: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_batch_is_handed_on_at_the_batch_wait() {
    let nats = NatsServer::start().expect("a nats-server with JetStream");
    let client = nats.connect().await;
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(stream::Config {
            name: "PULLER".to_owned(),
            subjects: vec!["puller.>".to_owned()],
            ..Default::default()
        })
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("puller".to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut puller = Puller::new(consumer, js.clone(), &client, 10_000, BATCH_WAIT)
        .await
        .expect("puller");

    // A steady flow of ~5,000 messages/s, below the batch size per batch wait,
    // for 1.5 s: each call that returns messages must do so about BATCH_WAIT
    // after its request. While messages keep coming, nats-server 2.9 keeps
    // feeding a pull request past its expiry without answering it; a puller
    // that waited for that answer took 2.2 s per batch here (its own limit).
    const MESSAGES: usize = 7_500;
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            for burst in 0..MESSAGES / 50 {
                let mut acks = Vec::new();
                for i in burst * 50..(burst + 1) * 50 {
                    acks.push(
                        js.publish(format!("puller.{}", i % 7), i.to_string().into())
                            .await
                            .expect("publish"),
                    );
                }
                for ack in acks {
                    ack.await.expect("ack");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut received = Vec::new();
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(20);
    while received.len() < MESSAGES && Instant::now() < until {
        let started = Instant::now();
        let batch = puller.next_batch().await.expect("a batch");
        if !batch.is_empty() {
            slowest = slowest.max(started.elapsed());
        }
        for message in batch {
            message.ack().await.expect("ack");
            received.push(String::from_utf8_lossy(&message.payload).into_owned());
        }
    }
    publisher.await.expect("publisher");
    let mut expected: Vec<String> = (0..MESSAGES).map(|i| i.to_string()).collect();
    received.sort();
    expected.sort();
    assert_eq!(received, expected, "every message once");
    assert!(
        slowest < BATCH_WAIT * 3,
        "a batch with messages took {slowest:?} with a batch wait of {BATCH_WAIT:?}"
    );
}
