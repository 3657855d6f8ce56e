//! The steps every scenario shares: wait for the load to flow, and at the end
//! wait until everything accepted is readable, read it back, and report.

use std::time::{Duration, Instant};

use eye_server_kit::jetstream::DEADLETTER_STREAM;

use crate::load::{Ledger, Load};
use crate::report::Report;
use crate::stack::Stack;
use crate::verify;

/// How long after the load ends every accepted event must be readable.
pub const CATCH_UP_DEADLINE: Duration = Duration::from_secs(90);

/// Waits until the load has `n` accepted events (the fault then hits a
/// pipeline that is busy).
///
/// # Panics
/// After `deadline`, with the stack's logs.
pub async fn wait_for_accepted(stack: &Stack, load: &Load, n: usize, deadline: Duration) {
    let started = Instant::now();
    while load.accepted() < n {
        assert!(
            started.elapsed() < deadline,
            "the load got only {} events accepted in {deadline:?}{}",
            load.accepted(),
            stack.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends a scenario: waits for the load, then until every accepted event is
/// readable from the query service (or [`CATCH_UP_DEADLINE`]), and builds the
/// report. EYE_DEADLETTER must hold one message per poison event accepted,
/// and nothing else.
pub async fn finish(name: &str, stack: &Stack, load: Load) -> (Report, Ledger) {
    let seed = load.plan.seed;
    let load_started = load.started;
    let ledger = load.finish().await;
    let load_ended = Instant::now();
    let (back, waited) = verify::wait_until_readable(
        &stack.http,
        &stack.query.url(""),
        &ledger,
        CATCH_UP_DEADLINE,
    )
    .await;
    let mut report = Report::new(name, seed, &ledger, &back);
    report.time("catch-up after the load ended", waited);
    report.note(format!(
        "load ran {:.1}s",
        load_ended.duration_since(load_started).as_secs_f64()
    ));

    // What readers are spared: copies in the table that FINAL merges away.
    let client = stack.clickhouse_client();
    let raw = client
        .query("SELECT count() FROM events")
        .fetch_one::<u64>()
        .await;
    let distinct = client
        .query("SELECT count() FROM events FINAL")
        .fetch_one::<u64>()
        .await;
    match (raw, distinct) {
        (Ok(raw), Ok(distinct)) => report.note(format!(
            "events table: {raw} rows, {distinct} after FINAL ({} redelivered copies absorbed)",
            raw.saturating_sub(distinct)
        )),
        (raw, distinct) => report.note(format!("events table counts: {raw:?} {distinct:?}")),
    }
    let dead_letters = ledger
        .events
        .iter()
        .filter(|e| e.poison && matches!(e.state, crate::load::State::Accepted(_)))
        .count() as u64;
    match stack.stream_messages(DEADLETTER_STREAM).await {
        Ok(n) if n == dead_letters => report.note(format!("dead letters: {n}")),
        Ok(n) => report.fail(format!(
            "EYE_DEADLETTER holds {n} messages, expected {dead_letters}"
        )),
        Err(error) => report.fail(error),
    }
    if !report.problems().is_empty() {
        println!("{}", stack.log_tails());
        for lost in report.findings.lost.iter().take(3) {
            let marker = lost.split(' ').next().unwrap_or_default();
            println!("  where is {lost}? {}", explain(stack, marker).await);
        }
    }
    (report, ledger)
}

/// Where an event that readers cannot see is: in which table, and what the
/// JetStream consumer says (for the failure message).
async fn explain(stack: &Stack, marker: &str) -> String {
    let client = stack.clickhouse_client();
    let mut out = Vec::new();
    for table in ["events", "events_by_category", "event_errors"] {
        let column = if table == "event_errors" {
            "raw"
        } else {
            "data"
        };
        // The marker is a JSON string value: its closing quote ends it.
        let sql = format!("SELECT count() FROM {table} WHERE position({column}, ?) > 0");
        let n = client
            .query(&sql)
            .bind(format!("{marker}\""))
            .fetch_one::<u64>()
            .await;
        out.push(format!("{table}: {n:?}"));
    }
    let js = stack.jetstream().await;
    if let Ok(mut stream) = js.get_stream(eye_contract::EVENTS_STREAM).await {
        if let Ok(info) = stream.info().await {
            out.push(format!("stream state: {:?}", info.state));
        }
        let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> =
            stream.get_consumer("eye-consumer").await;
        if let Ok(mut consumer) = consumer {
            if let Ok(info) = consumer.info().await {
                out.push(format!(
                    "consumer: delivered {:?}, ack floor {:?}, pending {}, ack pending {}, redelivered {}",
                    info.delivered,
                    info.ack_floor,
                    info.num_pending,
                    info.num_ack_pending,
                    info.num_redelivered
                ));
            }
        }
    }
    out.join("; ")
}
