//! The fault scenarios of issue 6, one test each. Every test starts its own
//! stack (separate processes), drives a steady load through the gateway,
//! injects its fault, waits for recovery, and checks from the query service
//! that every accepted event is readable exactly once and every rejected one
//! is in `/v1/errors`. Run one at a time (`--test-threads=1`): each loads the
//! machine on its own.

use std::time::{Duration, Instant};

use fault_suite::load::{Load, LoadPlan};
use fault_suite::scenario::{finish, wait_for_accepted};
use fault_suite::stack::{crash_and_restart, Stack, StackOptions, READY_DEADLINE};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_kill9_five_times_mid_batch() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(16),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 200, Duration::from_secs(30)).await;
    let mut restarts = Vec::new();
    let mut ready = Duration::ZERO;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        restarts.push(crash_and_restart(&mut stack.consumers[0]));
        let consumer = &stack.consumers[0];
        ready = ready.max(
            stack
                .wait_ready(consumer, READY_DEADLINE)
                .await
                .unwrap_or_else(|e| panic!("{e}{}", stack.log_tails())),
        );
    }
    let (mut report, _) = finish("consumer kill -9 ×5", &stack, load).await;
    report.time(
        "slowest consumer restart to /healthz",
        restarts.iter().copied().max().unwrap_or_default(),
    );
    report.time("slowest restart to /readyz", ready);
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_consumers_one_killed_repeatedly() {
    let mut stack = Stack::start(StackOptions {
        consumers: 2,
        ..StackOptions::default()
    })
    .await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(15),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 200, Duration::from_secs(30)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        slowest = slowest.max(crash_and_restart(&mut stack.consumers[1]));
    }
    let (mut report, _) = finish("two consumers, one kill -9 ×6", &stack, load).await;
    report.time("slowest consumer restart to /healthz", slowest);
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_sigterm_under_load() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let plan = LoadPlan {
        workers: 6,
        run_for: Duration::from_secs(12),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 300, Duration::from_secs(30)).await;
    let grace = Duration::from_secs(15);
    let stopping = Instant::now();
    fault_suite::stack::blocking(|| stack.gateway.stop(grace))
        .unwrap_or_else(|e| panic!("SIGTERM gateway: {e}"));
    let stopped_in = stopping.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarted = Instant::now();
    fault_suite::stack::blocking(|| stack.gateway.start_again())
        .unwrap_or_else(|e| panic!("restart gateway: {e}{}", stack.log_tails()));
    let ready = stack
        .wait_ready(&stack.gateway, READY_DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("{e}{}", stack.log_tails()));
    let (mut report, ledger) = finish("gateway SIGTERM under load", &stack, load).await;
    report.time("gateway exit after SIGTERM", stopped_in);
    report.time(
        "gateway restart to /readyz",
        restarted.elapsed().min(ready + stack.gateway.started_in()),
    );
    if let Some(first) = ledger.first_accept_after(restarted) {
        report.time("restart to first accepted answer", first);
    }
    if stopped_in >= grace {
        report.fail(format!(
            "the gateway did not exit within {grace:?} of SIGTERM (killed)"
        ));
    }
    report.check();
}

/// NATS goes away under load (SIGTERM, or SIGKILL when `crash`) for a few
/// seconds and comes back on the same port with the same store.
async fn nats_restart(name: &str, crash: bool) {
    let mut stack = Stack::start(StackOptions::default()).await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(14),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 300, Duration::from_secs(30)).await;
    fault_suite::stack::blocking(|| {
        if crash {
            stack.nats.kill()
        } else {
            stack.nats.stop()
        }
    })
    .unwrap_or_else(|e| panic!("stopping nats-server: {e}"));
    let down = Instant::now();
    let gateway_not_ready = stack
        .wait_not_ready(&stack.gateway, Duration::from_secs(15))
        .await;
    // Down for a few seconds while the load keeps sending.
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(down.elapsed())).await;
    let restarted = Instant::now();
    fault_suite::stack::blocking(|| stack.nats.start_again())
        .unwrap_or_else(|e| panic!("restarting nats-server: {e}"));
    let gateway_ready = stack
        .wait_ready(&stack.gateway, READY_DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("{e}{}", stack.log_tails()));
    let consumer_ready = stack
        .wait_ready(&stack.consumers[0], READY_DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("{e}{}", stack.log_tails()));
    let (mut report, ledger) = finish(name, &stack, load).await;
    report.time("NATS restart to gateway /readyz", gateway_ready);
    report.time("NATS restart to consumer /readyz", consumer_ready);
    if let Some(first) = ledger.first_accept_after(restarted) {
        report.time("NATS restart to first accepted answer", first);
    }
    match gateway_not_ready {
        Ok(took) => report.time("NATS down to gateway not ready", took),
        Err(error) => report.fail(format!("gateway stayed ready without NATS: {error}")),
    }
    let load_503: u64 = ledger
        .answers
        .iter()
        .filter(|(label, _)| label.starts_with("503"))
        .map(|(_, n)| n)
        .sum();
    report.note(format!(
        "the load saw 503 {load_503} times while NATS was down"
    ));
    if load_503 == 0 {
        report.fail("the gateway never answered 503 while NATS was down");
    }
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_restart_sigterm_under_load() {
    nats_restart("NATS SIGTERM and restart", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_restart_sigkill_under_load() {
    nats_restart("NATS SIGKILL and restart", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_stopped_20s_under_load() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(28),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 300, Duration::from_secs(30)).await;
    stack.stop_clickhouse();
    let down = Instant::now();
    let not_ready = stack
        .wait_not_ready(&stack.consumers[0], Duration::from_secs(15))
        .await;
    let accepted_at_stop = load.accepted();
    while down.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted_while_down = load.accepted() - accepted_at_stop;
    let restarted = Instant::now();
    let ready = stack.restart_clickhouse().await;
    let (mut report, _) = finish("ClickHouse stopped 20 s", &stack, load).await;
    match not_ready {
        Ok(took) => report.time("ClickHouse down to consumer not ready", took),
        Err(error) => report.fail(format!("consumer stayed ready without ClickHouse: {error}")),
    }
    report.time(
        "ClickHouse restart to consumer /readyz",
        ready.max(restarted.elapsed().min(ready)),
    );
    report.note(format!(
        "events accepted by the gateway while ClickHouse was down: {accepted_while_down}"
    ));
    let storage_failed = report.notes.iter().any(|n| n.contains("storage_failed"));
    if storage_failed {
        report.fail("an event was recorded as storage_failed during the outage");
    }
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_down_while_the_consumer_restarts_six_times() {
    // The first SIGTERM hands the batch in hand back to JetStream after the
    // (1 s) grace; the restarted consumers wait in their migrations until
    // ClickHouse is back, so they pull nothing meanwhile.
    let mut stack = Stack::start(StackOptions {
        consumer_args: vec!["--shutdown-grace-secs".into(), "1".into()],
        ..StackOptions::default()
    })
    .await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(20),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 300, Duration::from_secs(30)).await;
    stack.stop_clickhouse();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        fault_suite::stack::blocking(|| {
            stack.consumers[0].stop(Duration::from_secs(10))?;
            stack.consumers[0].start_again()
        })
        .unwrap_or_else(|e| panic!("restarting the consumer: {e}"));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let restarted = Instant::now();
    let ready = stack.restart_clickhouse().await;
    let (mut report, _) = finish("ClickHouse down, consumer restarted ×6", &stack, load).await;
    report.time("ClickHouse restart to consumer /readyz", ready);
    report.time(
        "ClickHouse restart to the end of the check",
        restarted.elapsed(),
    );
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_full_pushes_back_and_drops_nothing() {
    // About 2,000 events fit. The consumer is stopped for a while so the
    // backlog grows until the gateway refuses events; once the consumer is
    // back and has stored the backlog, it trims what it acknowledged
    // (--stream-trim-above) and the gateway accepts events again. Nothing
    // stored may be lost.
    let mut stack = Stack::start(StackOptions {
        stream_args: vec!["--stream-max-bytes".into(), "1000000".into()],
        ..StackOptions::default()
    })
    .await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(25),
        retry_for: Duration::from_secs(5),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 200, Duration::from_secs(30)).await;
    fault_suite::stack::blocking(|| stack.consumers[0].stop(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("stopping the consumer: {e}"));
    let stopped = Instant::now();
    let full = loop {
        if load.answers("503") > 0 {
            break Some(stopped.elapsed());
        }
        if stopped.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarted = Instant::now();
    fault_suite::stack::blocking(|| stack.consumers[0].start_again())
        .unwrap_or_else(|e| panic!("restarting the consumer: {e}"));
    let (mut report, ledger) = finish("stream full", &stack, load).await;
    match full {
        Some(took) => report.time("consumer stopped to the first 503", took),
        None => report.fail("the stream never filled (no 503 within 30 s)"),
    }
    match ledger.first_accept_after(restarted) {
        Some(first) => report.time("consumer restart to the first accepted answer", first),
        None => report.fail("nothing accepted after the consumer came back"),
    }
    let full_answers = ledger
        .answers
        .iter()
        .filter(|(label, _)| label.contains("stream_full"))
        .map(|(_, n)| n)
        .sum::<u64>();
    report.note(format!(
        "answers with code stream_full: {full_answers}; events given up by the client: {}",
        report.unconfirmed
    ));
    if full_answers == 0 {
        report.fail("no answer said stream_full");
    }
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_events_are_dead_lettered_while_the_rest_flows() {
    let stack = Stack::start(StackOptions {
        consumer_args: vec![
            "--max-deliver".into(),
            "3".into(),
            "--retry-min".into(),
            "50ms".into(),
        ],
        ..StackOptions::default()
    })
    .await;
    // No event that passes validation is refused by ClickHouse as the schema
    // stands, so a guard view stands in for a refusal: any INSERT holding an
    // event named "poison" fails (after the table write: see the report).
    stack
        .clickhouse_client()
        .query("CREATE MATERIALIZED VIEW poison_guard ENGINE = Memory AS SELECT throwIf(name = 'poison') AS refused FROM events")
        .execute()
        .await
        .unwrap_or_else(|e| panic!("guard view: {e}"));
    let plan = LoadPlan {
        run_for: Duration::from_secs(12),
        poison_percent: 1,
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    let (mut report, ledger) = finish("poison events", &stack, load).await;
    let poison = ledger.events.iter().filter(|e| e.poison).count();
    report.note(format!(
        "poison events sent {poison}, dead-lettered and in /v1/errors as storage_failed {}",
        report.findings.poison_recorded
    ));
    if poison == 0 {
        report.fail("the load sent no poison event");
    }
    report.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_resends_every_request_is_stored_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(12),
        resend_every_request: true,
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    let (mut report, _) = finish("every request sent twice", &stack, load).await;
    // Reject ids derive from the rejected bytes, so a resent request's rejects
    // fall in JetStream's duplicate window and are recorded once.
    let repeated = report.findings.rejects_repeated;
    if repeated > 0 {
        report.fail(format!(
            "{repeated} rejected events recorded more than once in /v1/errors"
        ));
    }
    report.check();
}
