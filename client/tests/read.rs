//! Reading back through the query service: automatic pagination of events,
//! single pages, whole sessions and session summaries, and typed errors.

mod common;

use common::{CLIENT, Stack, WRITE_KEY, quick_batches, wait_for_events};
use eye_client::{Event, EventFilter, QueryError, SessionFilter, Timestamp, Uuid};
use futures::TryStreamExt;
use serde_json::json;

fn at(n: i64) -> Timestamp {
    let t0 = Timestamp::parse("2021-09-26 09:00:00").expect("time");
    Timestamp::from_micros(t0.as_micros() + n * 1_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_read_back_page_by_page() {
    let stack = Stack::start("client_read").await;
    let client = stack
        .builder()
        .write_key(WRITE_KEY)
        .batching(quick_batches(100))
        .build()
        .expect("client");
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // 250 events in session a, interleaved with 50 in b; sent out of order.
    let mut events = Vec::new();
    for n in 0..300 {
        let session = if n % 6 == 5 { b } else { a };
        let name = if n % 2 == 0 { "Even" } else { "Odd" };
        events.push(
            Event::new(session, "party", name, at(n))
                .with_data(json!({"host": "h", "path": format!("/{n}")}))
                .expect("object"),
        );
    }
    events.reverse();
    for event in events {
        client.enqueue(event).await.expect("queued");
    }
    client.flush().await.expect("flush");
    assert_eq!(client.stats().accepted, 300);
    let all = wait_for_events(&client, EventFilter::default().session(a), 250).await;
    assert_eq!(all.len(), 250);

    // Pages of 40 followed automatically: every event once, in time order.
    let filter = EventFilter::default().session(a).page_size(40);
    let paged: Vec<_> = client
        .events(filter.clone())
        .try_collect()
        .await
        .expect("read");
    assert_eq!(paged.len(), 250);
    assert!(paged.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    assert!(
        paged
            .iter()
            .all(|e| e.session_id == a && e.client_id == CLIENT)
    );
    assert_eq!(paged, all);

    // The same by hand: 7 pages, the last without a cursor.
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut seen = 0;
    loop {
        let page = client
            .events_page(&filter, cursor.as_deref())
            .await
            .expect("page");
        pages += 1;
        seen += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert_eq!((pages, seen), (7, 250));

    // Filters combine: the even events of a in the first 100 ms.
    let even: Vec<_> = client
        .events(
            EventFilter::default()
                .session(a)
                .name("Even")
                .from(at(0))
                .to(at(100))
                .page_size(7),
        )
        .try_collect()
        .await
        .expect("read");
    assert!(
        even.iter()
            .all(|e| e.name == "Even" && e.timestamp < at(100))
    );
    assert_eq!(
        even.len(),
        (0..100).filter(|n| n % 2 == 0 && n % 6 != 5).count()
    );

    // The whole session in one call.
    let session = client.session_events(b).await.expect("session");
    assert_eq!(session.len(), 50);
    assert_eq!(session[0].timestamp, at(5));

    // Session summaries.
    let sessions: Vec<_> = client
        .sessions(
            SessionFilter::default()
                .from(at(0))
                .to(at(1000))
                .page_size(1),
        )
        .try_collect()
        .await
        .expect("sessions");
    let mine: Vec<_> = sessions
        .iter()
        .filter(|s| s.session_id == a || s.session_id == b)
        .collect();
    assert_eq!(mine.len(), 2, "{sessions:?}");
    for s in mine {
        let (count, first) = if s.session_id == a {
            (250, at(0))
        } else {
            (50, at(5))
        };
        assert_eq!((s.events, s.first), (count, first));
        assert_eq!(s.categories, ["party"]);
    }

    // A bad parameter is a typed error naming it.
    let bad = client
        .events(EventFilter::default().from(at(10)).to(at(5)))
        .try_collect::<Vec<_>>()
        .await;
    match bad {
        Err(QueryError::Status { status: 400, .. }) => {}
        other => panic!("expected a 400, got {other:?}"),
    }
    client.close().await.expect("close");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_without_a_token_or_with_a_wrong_one_fail_typed() {
    let stack = Stack::start("client_read_auth").await;
    let wrong = eye_client::Client::builder()
        .query_url(stack.query.url(""))
        .read_token("not a token")
        .build()
        .expect("client");
    match wrong.session_events(Uuid::new_v4()).await {
        Err(QueryError::Status { status: 401, .. }) => {}
        other => panic!("expected a 401, got {other:?}"),
    }
    let sender_only = eye_client::Client::builder()
        .gateway_url(stack.gateway.url(""))
        .write_key(WRITE_KEY)
        .build()
        .expect("client");
    assert!(matches!(
        sender_only.session_events(Uuid::new_v4()).await,
        Err(QueryError::NotConfigured)
    ));
    sender_only.close().await.expect("close");
    stack.stop().await;
}
