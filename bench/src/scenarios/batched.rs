//! Batched ingest: requests of 100 events (1% invalid), enough of them at
//! once to saturate the gateway; events accepted per second by the gateway,
//! and events stored per second by the consumer, from the first request until
//! the consumer has stored everything that was accepted — so a consumer that
//! falls behind lowers the figure instead of hiding in a backlog. The lag
//! (accepted, not yet stored) is sampled throughout.
//!
//! CPU seconds per million events of the gateway and the consumer (and of
//! NATS and ClickHouse when their pids are given) are taken around it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eye_contract::Timestamp;
use tokio::task::JoinHandle;

use super::{Counts, Ingest};
use crate::config::Sender;
use crate::templates::Templates;
use crate::traffic::Traffic;
use crate::{Context, Results};

/// Bodies generated ahead of the run.
const TEMPLATES: usize = 500;
/// How often the lag is sampled.
const LAG_SAMPLE: Duration = Duration::from_millis(250);

/// Events made ahead of the run for the client path (cycled, each round
/// with timestamps a microsecond earlier, so every event sent is distinct).
const POOL: u64 = 20_000;
/// Longest wait for the client to send what it still holds after the load.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// A load in progress: its task, and how many events it had accepted so far.
struct Load {
    task: JoinHandle<anyhow::Result<Counts>>,
    accepted: Box<dyn Fn() -> u64 + Send>,
}

/// Runs the scenario.
pub async fn run(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let plan = &ctx.plan;
    let stored_before = ctx.stored().await?;
    let cpu_before = super::cpu_snapshot(ctx);
    let started = Instant::now();
    let deadline = started + plan.batched_time;
    let load = match ctx.config.sender {
        Sender::Client => client_load(ctx, deadline)?,
        Sender::Raw => raw_load(ctx, deadline),
    };

    // Lag while the load runs: accepted so far minus stored so far.
    let mut max_lag = 0.0f64;
    let mut lag_samples = 0u64;
    while !load.task.is_finished() {
        tokio::time::sleep(LAG_SAMPLE).await;
        if let Ok(stored) = ctx.stored().await {
            let lag = (load.accepted)() as f64 - (stored - stored_before);
            max_lag = max_lag.max(lag);
            lag_samples += 1;
        }
    }
    let counts = load.task.await??;
    let requests = match ctx.config.sender {
        Sender::Client => counts.answered,
        Sender::Raw => counts.answered + counts.failed,
    };
    let load_secs = started.elapsed().as_secs_f64();
    let lag_at_end = ctx.stored().await.map_or(f64::NAN, |stored| {
        counts.accepted as f64 - (stored - stored_before)
    });

    let drained =
        super::wait_stored(ctx, stored_before, counts.accepted, plan.drain_timeout).await?;
    let cpu_after = super::cpu_snapshot(ctx);
    let stored = ctx.stored().await? - stored_before;

    results.set("batched_requests", requests as f64);
    results.set("batched_failed", counts.failed as f64);
    results.set("batched_accepted_events", counts.accepted as f64);
    results.set("batched_rejected_events", counts.rejected as f64);
    results.set(
        "batched_accepted_events_per_s",
        counts.accepted as f64 / load_secs,
    );
    results.set("batched_load_seconds", load_secs);
    results.set("batched_max_lag_events", max_lag.max(0.0));
    results.set("batched_lag_samples", lag_samples as f64);
    if lag_at_end.is_finite() {
        results.set("batched_lag_at_end_of_load_events", lag_at_end.max(0.0));
    }
    match drained {
        Some(at) => {
            let secs = at.duration_since(started).as_secs_f64();
            results.set("batched_stored_events_per_s", stored / secs);
            results.set("batched_drain_seconds", secs - load_secs);
        }
        None => results.error(format!(
            "batched: the consumer stored {stored} of {} accepted events within {:?} after the load",
            counts.accepted, plan.drain_timeout
        )),
    }
    if let Some(ceiling) = results.get("jetstream_publish_ceiling_per_s") {
        if let Some(stored_rate) = results.get("batched_stored_events_per_s") {
            results.set(
                "batched_stored_to_jetstream_ceiling_ratio",
                stored_rate / ceiling,
            );
        }
    }
    if let Some(ceiling) = results.get("clickhouse_insert_ceiling_rows_per_s") {
        if let Some(stored_rate) = results.get("batched_stored_events_per_s") {
            results.set(
                "batched_stored_to_clickhouse_ceiling_ratio",
                stored_rate / ceiling,
            );
        }
    }
    super::cpu_per_million(results, &cpu_before, &cpu_after, counts.accepted);
    if counts.failed > 0 {
        let what = match ctx.config.sender {
            Sender::Client => "events were given up by the client",
            Sender::Raw => "requests failed",
        };
        results.error(format!("batched: {} {what}", counts.failed));
    }
    Ok(())
}

/// Through the client crate, as an application sends: events enqueued one
/// by one, batched by the client into requests of `batch_events`, with
/// `batch_concurrency` requests in flight. `answered` counts requests and
/// `failed` events given up.
fn client_load(ctx: &Context, deadline: Instant) -> anyhow::Result<Load> {
    let plan = &ctx.plan;
    let batching = eye_client::BatchConfig {
        max_events: plan.batch_events,
        concurrency: plan.batch_concurrency,
        queue_capacity: plan.batch_events * plan.batch_concurrency * 2,
        ..Default::default()
    };
    let client = eye_client::Client::builder()
        .gateway_url(&ctx.config.gateway_url)
        .write_key(&ctx.config.write_key)
        .batching(batching)
        .build()?;
    let mut traffic = Traffic::new(0xBA7C, plan.sessions);
    let now = Timestamp::now();
    let pool: Vec<eye_client::Event> = (0..POOL).map(|_| traffic.client_event(now).0).collect();
    let total = plan.batched_events as u64;
    let sender = client.clone();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        while n < total && Instant::now() < deadline {
            let mut event = pool[usize::try_from(n % POOL).unwrap_or(0)].clone();
            let shift = i64::try_from(n / POOL).unwrap_or(0);
            event.timestamp = Timestamp::from_micros(event.timestamp.as_micros() - shift);
            sender.enqueue(event).await?;
            n += 1;
        }
        tokio::time::timeout(FLUSH_TIMEOUT, sender.close())
            .await
            .map_err(|_| anyhow::anyhow!("the client did not flush within {FLUSH_TIMEOUT:?}"))??;
        let stats = sender.stats();
        Ok(Counts {
            answered: stats.requests,
            accepted: stats.accepted,
            rejected: stats.rejected,
            failed: stats.failed,
            late: 0,
        })
    });
    Ok(Load {
        task,
        accepted: Box::new(move || client.stats().accepted),
    })
}

/// Pre-made bodies on the benchmark's own lean connections, one request at a
/// time per connection: the least load-generator CPU per event.
fn raw_load(ctx: &Context, deadline: Instant) -> Load {
    let plan = &ctx.plan;
    let mut traffic = Traffic::new(0xBA7C, plan.sessions);
    let templates = Arc::new(Templates::new(
        &mut traffic,
        TEMPLATES,
        plan.batch_events,
        Timestamp::now(),
    ));
    let requests = (plan.batched_events / plan.batch_events).max(1) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..plan.batch_concurrency {
        let (templates, next, accepted) = (templates.clone(), next.clone(), accepted.clone());
        let mut ingest = Ingest::new(ctx);
        workers.push(tokio::spawn(async move {
            let mut counts = Counts::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || Instant::now() >= deadline {
                    break;
                }
                let (body, _valid) = templates.render(n);
                if let Some(v) = ingest.post(body, &mut counts).await {
                    accepted.fetch_add(v.accepted, Ordering::Relaxed);
                }
            }
            counts
        }));
    }
    let task = tokio::spawn(async move {
        let mut counts = Counts::default();
        for worker in workers {
            counts.add(&worker.await?);
        }
        Ok(counts)
    });
    Load {
        task,
        accepted: Box::new(move || accepted.load(Ordering::Relaxed)),
    }
}
