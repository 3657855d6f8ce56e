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
    let (mut report, _) = finish("consumer kill -9 ×5", &stack, load, 0).await;
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
    let (mut report, _) = finish("two consumers, one kill -9 ×6", &stack, load, 0).await;
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
    let (mut report, ledger) = finish("gateway SIGTERM under load", &stack, load, 0).await;
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
    let mut gateway_503 = 0;
    while down.elapsed() < Duration::from_secs(4) {
        let answer = stack
            .http
            .post(stack.gateway.url("/v1/events"))
            .bearer_auth(fault_suite::load::WRITE_KEY)
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await;
        if let Ok(answer) = answer {
            if answer.status().as_u16() == 503 {
                gateway_503 += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let (mut report, ledger) = finish(name, &stack, load, 0).await;
    report.time("NATS restart to gateway /readyz", gateway_ready);
    report.time("NATS restart to consumer /readyz", consumer_ready);
    if let Some(first) = ledger.first_accept_after(restarted) {
        report.time("NATS restart to first accepted answer", first);
    }
    match gateway_not_ready {
        Ok(took) => report.time("NATS down to gateway not ready", took),
        Err(error) => report.fail(format!("gateway stayed ready without NATS: {error}")),
    }
    let load_503 = ledger.answers.get("503").copied().unwrap_or(0);
    report.note(format!(
        "while NATS was down: {gateway_503} probe requests answered 503; the load saw 503 {load_503} times"
    ));
    if gateway_503 == 0 && load_503 == 0 {
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
    fault_suite::stack::blocking(|| stack.clickhouse.stop())
        .unwrap_or_else(|e| panic!("stopping clickhouse-server: {e}"));
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
    fault_suite::stack::blocking(|| stack.clickhouse.start_again())
        .unwrap_or_else(|e| panic!("restarting clickhouse-server: {e}"));
    let ready = stack
        .wait_ready(&stack.consumers[0], READY_DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("{e}{}", stack.log_tails()));
    let (mut report, _) = finish("ClickHouse stopped 20 s", &stack, load, 0).await;
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
