//! The shipped NATS configuration (deploy/nats/local.conf with auth.conf) on a real
//! nats-server: each user can do its job and nothing more. The demo client publishes
//! its own events and gets JetStream acknowledgements, but cannot publish for another
//! client, read the stream, or use the JetStream API; the gateway and consumer users
//! do what the services do (server-kit's stream set-up, publishing events and rejects,
//! a durable pull consumer with acknowledgements, stream reads, dead letters).

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_nats::{ConnectOptions, Event};
use eye_server_kit::jetstream::{
    create_or_update_streams, StreamArgs, DEADLETTER_STREAM, REJECTS_STREAM,
};
use eye_testkit::{unique_name, NatsServer};
use futures::StreamExt;
use tokio::sync::mpsc;

/// The events stream (eye-contract's EVENTS_STREAM; checked against server-kit's
/// configuration below).
const EVENTS_STREAM: &str = "EYE_EVENTS";

/// Bound on each request that is expected to be refused (the server drops a
/// forbidden publish, so the requester only sees its timeout).
const REFUSED_WITHIN: Duration = Duration::from_secs(2);
/// Bound on waiting for the server's permission-violation error.
const ERROR_WITHIN: Duration = Duration::from_secs(10);

struct Users {
    gateway: String,
    consumer: String,
    demo: String,
}

/// Fresh passwords, and nats-server with deploy/nats/local.conf as shipped (its
/// users, permissions and `include ./auth.conf`); the harness chooses ports,
/// store and name.
fn start_server() -> (Users, NatsServer) {
    let users = Users {
        gateway: unique_name("gw"),
        consumer: unique_name("co"),
        demo: unique_name("de"),
    };
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/local.conf");
    let server = NatsServer::builder()
        .config_file(config)
        // Overridden by the harness's flags, but the file refers to them.
        .env("EYE_NATS_PORT", "4222")
        .env("EYE_NATS_MONITOR_PORT", "8222")
        .env("EYE_NATS_GATEWAY_PASSWORD", &users.gateway)
        .env("EYE_NATS_CONSUMER_PASSWORD", &users.consumer)
        .env("EYE_NATS_DEMO_PASSWORD", &users.demo)
        .start()
        .unwrap_or_else(|error| panic!("starting nats-server with local.conf: {error}"));
    (users, server)
}

/// A connection as `user`, and the server errors it receives.
async fn connect(
    server: &NatsServer,
    user: &str,
    password: &str,
    inbox_prefix: Option<&str>,
) -> (async_nats::Client, Violations) {
    let (errors_tx, errors) = mpsc::unbounded_channel();
    let mut options = ConnectOptions::new()
        .user_and_password(user.to_owned(), password.to_owned())
        .event_callback(move |event| {
            let errors_tx = errors_tx.clone();
            async move {
                if let Event::ServerError(error) = event {
                    let _ = errors_tx.send(error.to_string());
                }
            }
        });
    if let Some(prefix) = inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    let client = options
        .connect(server.url())
        .await
        .unwrap_or_else(|error| panic!("connecting as {user}: {error}\n{}", server.log_tail()));
    (
        client,
        Violations {
            errors,
            seen: Vec::new(),
        },
    )
}

/// The server errors a connection received, to look up permission violations.
struct Violations {
    errors: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Violations {
    /// Waits for a "Permissions Violation for `what` to `subject`" error (the server
    /// names the subject of a refused publish or subscription).
    async fn expect(&mut self, what: &str, subject: &str) {
        let wanted = format!("Permissions Violation for {what} to \"{subject}\"");
        let deadline = tokio::time::Instant::now() + ERROR_WITHIN;
        while !self.seen.iter().any(|error| error.contains(&wanted)) {
            match tokio::time::timeout_at(deadline, self.errors.recv()).await {
                Ok(Some(error)) => self.seen.push(error),
                Ok(None) => panic!("connection closed before: {wanted}"),
                Err(_) => panic!(
                    "no `{wanted}` within {ERROR_WITHIN:?}; errors: {:?}",
                    self.seen
                ),
            }
        }
    }
}

/// Publishes to JetStream and waits for the acknowledgement.
async fn js_publish(
    js: &jetstream::Context,
    subject: &'static str,
    payload: &'static str,
) -> Result<jetstream::publish::PublishAck, String> {
    js.publish(subject, payload.into())
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())
}

fn stream_args() -> StreamArgs {
    StreamArgs {
        max_age: Duration::from_secs(3600),
        max_bytes: 64 * 1024 * 1024,
        duplicate_window: Duration::from_secs(120),
        replicas: 1,
    }
}

fn js_with_timeout(client: async_nats::Client, timeout: Duration) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(timeout)
        .ack_timeout(timeout)
        .build(client)
}

/// As the consumer service does: its durable pull consumer on `stream`, `count`
/// messages pulled, each acknowledged with the server's confirmation.
async fn pull_and_ack(
    js: &jetstream::Context,
    stream: &str,
    durable: &str,
    count: usize,
) -> (jetstream::consumer::PullConsumer, Vec<String>) {
    let consumer = js
        .get_stream(stream)
        .await
        .unwrap_or_else(|error| panic!("{stream} info: {error}"))
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|error| panic!("durable consumer {durable} on {stream}: {error}"));
    let mut batch = consumer
        .fetch()
        .max_messages(count)
        .expires(Duration::from_secs(10))
        .messages()
        .await
        .unwrap_or_else(|error| panic!("pull request on {stream}: {error}"));
    let mut pulled = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.unwrap_or_else(|error| panic!("pulled from {stream}: {error}"));
        message
            .double_ack_with(AckKind::Ack)
            .await
            .unwrap_or_else(|error| panic!("acknowledgement on {stream} confirmed: {error}"));
        pulled.push(String::from_utf8_lossy(&message.payload).into_owned());
    }
    (consumer, pulled)
}

#[tokio::test]
async fn anonymous_and_wrong_password_connections_are_refused() {
    let (users, server) = start_server();
    let anonymous = async_nats::connect(server.url()).await;
    assert!(anonymous.is_err(), "connected without credentials");
    let wrong = ConnectOptions::new()
        .user_and_password("demo".into(), users.gateway.clone())
        .connect(server.url())
        .await;
    assert!(wrong.is_err(), "demo connected with the gateway's password");
}

#[tokio::test]
async fn each_user_can_do_its_job_and_a_client_only_publishes_its_own_events() {
    let (users, server) = start_server();
    assert_eq!(stream_args().events_config().name, EVENTS_STREAM);

    // The gateway sets up the streams as the service does, publishes events of
    // two clients and a reject, and gets an acknowledgement for each.
    let (gateway, mut gateway_errors) = connect(&server, "eye_gateway", &users.gateway, None).await;
    let gateway_js = js_with_timeout(gateway.clone(), Duration::from_secs(10));
    create_or_update_streams(&gateway_js, &stream_args())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "gateway creates the streams: {error}\n{}",
                server.log_tail()
            )
        });
    for (subject, payload, stream) in [
        (
            "eye.events.demo.party",
            "from the gateway for demo",
            EVENTS_STREAM,
        ),
        (
            "eye.events.other.party",
            "from the gateway for other",
            EVENTS_STREAM,
        ),
        ("eye.rejects.demo", "a reject", REJECTS_STREAM),
    ] {
        let ack = js_publish(&gateway_js, subject, payload)
            .await
            .unwrap_or_else(|error| panic!("gateway publishes {subject}: {error}"));
        assert_eq!(ack.stream, stream, "{subject}");
    }

    // The demo client, with its private inbox prefix, publishes its own event and
    // gets JetStream's acknowledgement.
    let (demo, mut demo_errors) = connect(&server, "demo", &users.demo, Some("_INBOX.demo")).await;
    let demo_js = js_with_timeout(demo.clone(), REFUSED_WITHIN);
    let ack = js_publish(&demo_js, "eye.events.demo.party", "from demo itself")
        .await
        .unwrap_or_else(|error| panic!("demo's own event: {error}\n{}", server.log_tail()));
    assert_eq!(ack.stream, EVENTS_STREAM);
    let demo_seq = ack.sequence;

    // It cannot publish for another client, nor rejects or dead letters: no
    // acknowledgement, a permission violation, and nothing stored.
    let forged = [
        "eye.events.other.forged",
        "eye.rejects.other",
        "eye.deadletter.other.forged",
    ];
    let refused =
        futures::future::join_all(forged.map(|subject| js_publish(&demo_js, subject, "forged")))
            .await;
    for (subject, result) in forged.into_iter().zip(refused) {
        assert!(result.is_err(), "demo published to {subject}: {result:?}");
        demo_errors.expect("Publish", subject).await;
    }

    // It cannot read: subscriptions to the events and to other connections'
    // inboxes (where the consumer's pulled messages arrive) are refused...
    let mut events_sub = demo.subscribe("eye.events.>").await.expect("SUB is sent");
    demo_errors.expect("Subscription", "eye.events.>").await;
    let mut inbox_sub = demo.subscribe("_INBOX.>").await.expect("SUB is sent");
    demo_errors.expect("Subscription", "_INBOX.>").await;

    // ...nor use the JetStream API: stream info, message get, consumer creation.
    assert!(demo_js.get_stream(EVENTS_STREAM).await.is_err());
    demo_errors
        .expect("Publish", "$JS.API.STREAM.INFO.EYE_EVENTS")
        .await;
    let get = demo.request(
        "$JS.API.STREAM.MSG.GET.EYE_EVENTS",
        format!(r#"{{"seq":{demo_seq}}}"#).into(),
    );
    let got = tokio::time::timeout(REFUSED_WITHIN, get).await;
    assert!(!matches!(got, Ok(Ok(_))), "demo read message {demo_seq}");
    demo_errors
        .expect("Publish", "$JS.API.STREAM.MSG.GET.EYE_EVENTS")
        .await;
    let created = demo_js
        .create_consumer_on_stream(
            pull::Config {
                durable_name: Some("demo-reader".into()),
                ..Default::default()
            },
            EVENTS_STREAM,
        )
        .await;
    assert!(created.is_err(), "demo created a consumer");
    demo_errors
        .expect("Publish", "$JS.API.CONSUMER.CREATE.EYE_EVENTS.demo-reader")
        .await;

    // The consumer sets up the streams, its durable consumer, pulls and
    // acknowledges everything, reads a message by sequence, and parks a dead letter.
    let (consumer, mut consumer_errors) =
        connect(&server, "eye_consumer", &users.consumer, None).await;
    let consumer_js = js_with_timeout(consumer.clone(), Duration::from_secs(10));
    create_or_update_streams(&consumer_js, &stream_args())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "consumer creates the streams: {error}\n{}",
                server.log_tail()
            )
        });
    // Read before the acks (a work-queue stream would drop acked messages).
    let message = consumer_js
        .get_stream(EVENTS_STREAM)
        .await
        .expect("events stream info")
        .get_raw_message(demo_seq)
        .await
        .expect("consumer reads a message by sequence");
    assert_eq!(message.subject.as_str(), "eye.events.demo.party");
    let (durable, pulled) = pull_and_ack(&consumer_js, EVENTS_STREAM, "eye-consumer", 3).await;
    assert_eq!(
        pulled,
        [
            "from the gateway for demo",
            "from the gateway for other",
            "from demo itself"
        ],
        "the consumer pulls exactly what was acknowledged, in order (nothing forged)"
    );
    let info = durable.get_info().await.expect("consumer info");
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));
    let (_, rejects) = pull_and_ack(&consumer_js, REJECTS_STREAM, "eye-consumer-rejects", 1).await;
    assert_eq!(rejects, ["a reject"]);
    let dead = js_publish(&consumer_js, "eye.deadletter.demo.party", "parked")
        .await
        .expect("consumer publishes a dead letter");
    assert_eq!(dead.stream, DEADLETTER_STREAM);
    // It trims what every consumer acknowledged (consumer::trim): the
    // consumers' ack floors, then a purge below them.
    let events_stream = consumer_js
        .get_stream(EVENTS_STREAM)
        .await
        .expect("events stream info");
    let floors: Vec<u64> = futures::TryStreamExt::try_collect(futures::TryStreamExt::map_ok(
        events_stream.consumers(),
        |c| c.ack_floor.stream_sequence,
    ))
    .await
    .expect("consumer lists the consumers of the events stream");
    assert_eq!(floors, [3]);
    let purged = events_stream
        .purge()
        .sequence(4)
        .await
        .expect("consumer purges acknowledged events");
    assert_eq!(purged.purged, 3);

    // The consumer cannot publish events; the gateway cannot read them.
    let consumer_short = js_with_timeout(consumer.clone(), REFUSED_WITHIN);
    let forged = js_publish(&consumer_short, "eye.events.demo.party", "forged").await;
    assert!(
        forged.is_err(),
        "the consumer published an event: {forged:?}"
    );
    consumer_errors
        .expect("Publish", "eye.events.demo.party")
        .await;
    let _gateway_sub = gateway
        .subscribe("eye.events.>")
        .await
        .expect("SUB is sent");
    gateway_errors.expect("Subscription", "eye.events.>").await;

    // Nothing the demo client forged reached a stream, and its refused
    // subscriptions got nothing though events and pulled messages flowed: after a
    // round trip on its connection, anything routed to it would have arrived.
    let state = consumer_js
        .get_stream(EVENTS_STREAM)
        .await
        .expect("events stream info")
        .cached_info()
        .state
        .clone();
    assert_eq!(
        state.last_sequence, 3,
        "events stream took only the three legitimate events"
    );
    for subject in ["eye.events.other.forged", "eye.rejects.other"] {
        let stream = if subject.starts_with("eye.rejects") {
            REJECTS_STREAM
        } else {
            EVENTS_STREAM
        };
        let found = consumer_js
            .get_stream(stream)
            .await
            .expect("stream info")
            .get_last_raw_message_by_subject(subject)
            .await;
        assert!(found.is_err(), "{subject} is in {stream}");
    }
    demo.flush().await.expect("round trip");
    assert!(
        futures::FutureExt::now_or_never(events_sub.next()).is_none(),
        "demo's refused subscription to eye.events.> received a message"
    );
    assert!(
        futures::FutureExt::now_or_never(inbox_sub.next()).is_none(),
        "demo's refused subscription to _INBOX.> received a message"
    );
}
