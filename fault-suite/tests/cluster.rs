//! The NATS cluster case of issue 6: three `nats-server`s on loopback form one
//! JetStream cluster from the shipped `deploy/nats/cluster.conf` (with the
//! users of `auth.conf`), the streams are replicated three times, and the
//! leader of `EYE_EVENTS` is killed (SIGKILL) under load, kept down for a few
//! seconds, then started again to rejoin. Every event the gateway accepted
//! must be readable exactly once, and the restarted member must catch up.

use std::time::{Duration, Instant};

use eye_contract::EVENTS_STREAM;
use fault_suite::load::{Ledger, Load, LoadPlan};
use fault_suite::report::Report;
use fault_suite::scenario::{finish, wait_for_accepted};
use fault_suite::stack::{blocking, Stack, StackOptions, READY_DEADLINE};
use serde_json::Value;

/// How long the cluster may take to elect a new stream leader.
const ELECTION_DEADLINE: Duration = Duration::from_secs(30);
/// How long the killed member stays down while the load runs.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// How long the restarted member may take to be a current replica again.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_cluster_stream_leader_kill9_under_load() {
    let mut stack = Stack::start(StackOptions {
        nats_cluster: true,
        ..StackOptions::default()
    })
    .await;
    let plan = LoadPlan {
        run_for: Duration::from_secs(20),
        ..LoadPlan::default()
    };
    let load = Load::start(&stack.gateway.url(""), plan);
    wait_for_accepted(&stack, &load, 300, Duration::from_secs(30)).await;

    let leader = match stack.stream_cluster(EVENTS_STREAM).await {
        Ok(Some(cluster)) => cluster.leader,
        Ok(None) => None,
        Err(error) => panic!("{error}{}", stack.log_tails()),
    }
    .unwrap_or_else(|| panic!("EYE_EVENTS has no leader{}", stack.log_tails()));
    let gateway_on = connected_to(&stack, "eye-gateway").await;
    let consumer_on = connected_to(&stack, "eye-consumer").await;

    let accepted_at_kill = load.accepted();
    let killed = Instant::now();
    member_op(&mut stack, &leader, |member| member.kill());
    let elected = wait_new_leader(&stack, &leader, killed).await;
    tokio::time::sleep(DOWN_FOR.saturating_sub(killed.elapsed())).await;
    let accepted_while_down = load.accepted() - accepted_at_kill;

    let restarted = Instant::now();
    member_op(&mut stack, &leader, |member| {
        member.start_again()?;
        member.wait_healthy(READY_DEADLINE)
    });
    let healthy = restarted.elapsed();
    let caught_up = wait_all_current(&stack, restarted).await;

    let (mut report, ledger) = finish("NATS cluster: stream leader kill -9", &stack, load).await;
    report.note(format!(
        "killed the EYE_EVENTS leader {leader} (gateway connected to {gateway_on}, consumer to \
         {consumer_on}); events accepted while it was down: {accepted_while_down}"
    ));
    match elected {
        Ok((new_leader, took)) => {
            report.note(format!("new stream leader: {new_leader}"));
            report.time("leader killed to new leader elected", took);
        }
        Err(error) => report.fail(error),
    }
    match ledger.first_accept_after(killed) {
        Some(first) => report.time("leader killed to first accepted answer", first),
        None => report.fail("nothing was accepted after the leader was killed"),
    }
    report.time(
        "longest pause between accepted answers after the kill",
        longest_pause(&ledger, killed),
    );
    report.time("killed member restart to /healthz 200", healthy);
    match caught_up {
        Ok(took) => report.time("killed member restart to every replica current", took),
        Err(error) => report.fail(error),
    }
    let failures_while_down = ledger
        .failed_at
        .iter()
        .filter(|at| **at >= killed && **at < restarted)
        .count();
    report.note(format!(
        "requests that failed (retried by the load) between the kill and the restart: \
         {failures_while_down}"
    ));
    compare_members(&stack, &mut report).await;

    report.check();
}

/// Runs `op` on the member named `name`, panicking with the logs if it fails.
fn member_op<T>(
    stack: &mut Stack,
    name: &str,
    op: impl FnOnce(&mut eye_testkit::NatsServer) -> Result<T, eye_testkit::HarnessError>,
) -> T {
    let result = match stack.nats_member_mut(name) {
        Some(member) => blocking(|| op(member)),
        None => panic!("no NATS member named {name}"),
    };
    result.unwrap_or_else(|error| panic!("{name}: {error}{}", stack.log_tails()))
}

/// Waits until `EYE_EVENTS` has a leader other than `old`; returns its name
/// and how long after `killed` it was seen.
async fn wait_new_leader(
    stack: &Stack,
    old: &str,
    killed: Instant,
) -> Result<(String, Duration), String> {
    let mut last = String::new();
    while killed.elapsed() < ELECTION_DEADLINE {
        match stack.stream_cluster(EVENTS_STREAM).await {
            Ok(Some(cluster)) => match cluster.leader {
                Some(leader) if leader != old => return Ok((leader, killed.elapsed())),
                other => last = format!("leader {other:?}"),
            },
            Ok(None) => last = "no cluster information".to_owned(),
            // No leader yet: the stream info request times out or fails.
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!(
        "no new EYE_EVENTS leader {ELECTION_DEADLINE:?} after killing {old} (last: {last})"
    ))
}

/// Waits until `EYE_EVENTS` has a leader and every replica is current and
/// online; returns how long after `since` that was.
async fn wait_all_current(stack: &Stack, since: Instant) -> Result<Duration, String> {
    let mut last = String::new();
    while since.elapsed() < CATCH_UP_DEADLINE {
        match stack.stream_cluster(EVENTS_STREAM).await {
            Ok(Some(cluster)) => {
                let current = cluster.leader.is_some()
                    && cluster.replicas.len() + 1 == fault_suite::stack::CLUSTER_SIZE
                    && cluster.replicas.iter().all(|r| r.current && !r.offline);
                if current {
                    return Ok(since.elapsed());
                }
                last = format!("{cluster:?}");
            }
            Ok(None) => last = "no cluster information".to_owned(),
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "EYE_EVENTS replicas not all current {CATCH_UP_DEADLINE:?} after the restart: {last}"
    ))
}

/// The longest time without an accepted answer from `from` to the last
/// accepted answer (the stall the clients saw while the cluster failed over).
fn longest_pause(ledger: &Ledger, from: Instant) -> Duration {
    let mut times: Vec<Instant> = ledger
        .accepted_at
        .iter()
        .copied()
        .filter(|at| *at >= from)
        .collect();
    times.sort();
    let mut previous = from;
    let mut longest = Duration::ZERO;
    for at in times {
        longest = longest.max(at.duration_since(previous));
        previous = at;
    }
    longest
}

/// The members a client named `client` is connected to (their `/connz`).
async fn connected_to(stack: &Stack, client: &str) -> String {
    let mut on = Vec::new();
    for member in stack.nats_members() {
        let url = format!("{}/connz?limit=1024", member.monitoring_url());
        let body = match monitor_json(stack, &url).await {
            Ok(body) => body,
            Err(error) => return error,
        };
        let connections = body["connections"].as_array().cloned().unwrap_or_default();
        if connections.iter().any(|c| c["name"] == client) {
            on.push(member.name().to_owned());
        }
    }
    if on.is_empty() {
        "none".to_owned()
    } else {
        on.join(" and ")
    }
}

/// Every member's copy of `EYE_EVENTS` (its `/jsz`) must hold the same
/// messages once the restarted member has caught up.
async fn compare_members(stack: &Stack, report: &mut Report) {
    let mut copies = Vec::new();
    for member in stack.nats_members() {
        let url = format!("{}/jsz?accounts=true&streams=true", member.monitoring_url());
        let state = match monitor_json(stack, &url).await {
            Ok(body) => events_state(&body),
            Err(error) => Err(error),
        };
        match state {
            Ok((messages, last_seq)) => copies.push((member.name().to_owned(), messages, last_seq)),
            Err(error) => report.fail(format!("{}: {error}", member.name())),
        }
    }
    let text: Vec<String> = copies
        .iter()
        .map(|(name, messages, last)| format!("{name} {messages} (last seq {last})"))
        .collect();
    report.note(format!(
        "EYE_EVENTS messages per member: {}",
        text.join(", ")
    ));
    let first = copies.first().map(|(_, m, l)| (*m, *l));
    if copies.iter().any(|(_, m, l)| Some((*m, *l)) != first) {
        report.fail("the members' copies of EYE_EVENTS differ");
    }
}

/// `(messages, last_seq)` of `EYE_EVENTS` in a `/jsz?accounts=true&streams=true` answer.
fn events_state(jsz: &Value) -> Result<(u64, u64), String> {
    let accounts = jsz["account_details"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for account in &accounts {
        let streams = account["stream_detail"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(stream) = streams.iter().find(|s| s["name"] == EVENTS_STREAM) {
            let messages = stream["state"]["messages"].as_u64();
            let last_seq = stream["state"]["last_seq"].as_u64();
            if let (Some(messages), Some(last_seq)) = (messages, last_seq) {
                return Ok((messages, last_seq));
            }
            return Err(format!("no stream state in /jsz: {stream}"));
        }
    }
    Err("EYE_EVENTS not in /jsz".to_owned())
}

/// A monitoring endpoint's JSON answer.
async fn monitor_json(stack: &Stack, url: &str) -> Result<Value, String> {
    let response = stack
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))
}
