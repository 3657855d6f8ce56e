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

use super::{Counts, Ingest};
use crate::templates::Templates;
use crate::traffic::Traffic;
use crate::{Context, Results};

/// Bodies generated ahead of the run.
const TEMPLATES: usize = 500;
/// How often the lag is sampled.
const LAG_SAMPLE: Duration = Duration::from_millis(250);

/// Runs the scenario.
pub async fn run(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let plan = &ctx.plan;
    let mut traffic = Traffic::new(0xBA7C, plan.sessions);
    let templates = Arc::new(Templates::new(
        &mut traffic,
        TEMPLATES,
        plan.batch_events,
        Timestamp::now(),
    ));
    let requests = (plan.batched_events / plan.batch_events).max(1) as u64;

    let stored_before = ctx.stored().await?;
    let cpu_before = super::cpu_snapshot(ctx);
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + plan.batched_time;

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

    // Lag while the load runs: accepted so far minus stored so far.
    let mut max_lag = 0.0f64;
    let mut lag_samples = 0u64;
    while workers.iter().any(|w| !w.is_finished()) {
        tokio::time::sleep(LAG_SAMPLE).await;
        if let Ok(stored) = ctx.stored().await {
            let lag = accepted.load(Ordering::Relaxed) as f64 - (stored - stored_before);
            max_lag = max_lag.max(lag);
            lag_samples += 1;
        }
    }
    let mut counts = Counts::default();
    for worker in workers {
        counts.add(&worker.await?);
    }
    let requests = counts.answered + counts.failed;
    let load_secs = started.elapsed().as_secs_f64();
    let lag_at_end = ctx.stored().await.map_or(f64::NAN, |stored| {
        counts.accepted as f64 - (stored - stored_before)
    });

    let drained =
        super::wait_stored(ctx, stored_before, counts.accepted, plan.drain_timeout).await?;
    let cpu_after = super::cpu_snapshot(ctx);
    let stored = ctx.stored().await? - stored_before;

    results.set("batched_requests", requests as f64);
    results.set("batched_failed_requests", counts.failed as f64);
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
        results.error(format!(
            "batched: {} of {} requests failed",
            counts.failed, requests
        ));
    }
    Ok(())
}
