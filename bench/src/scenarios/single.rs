//! Single-event ingest: one event per request (1% invalid) on keep-alive
//! connections, each connection sending its next request as soon as the last
//! is answered; requests per second and latency percentiles. Afterwards it
//! waits for the consumer to store what was accepted, so the next scenario
//! starts on a quiet pipeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use eye_contract::Timestamp;

use super::{Counts, Ingest};
use crate::stats::Latencies;
use crate::templates::Templates;
use crate::traffic::Traffic;
use crate::{Context, Results};

/// Bodies generated ahead of the run.
const TEMPLATES: usize = 5000;

/// Runs the scenario.
pub async fn run(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let plan = &ctx.plan;
    let mut traffic = Traffic::new(0x51E, plan.sessions);
    let templates = Arc::new(Templates::new(&mut traffic, TEMPLATES, 1, Timestamp::now()));
    let total = plan.single_requests as u64;
    let stored_before = ctx.stored().await?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + plan.single_time;

    let mut workers = Vec::new();
    for _ in 0..plan.single_concurrency {
        let (templates, next) = (templates.clone(), next.clone());
        let mut ingest = Ingest::new(ctx);
        workers.push(tokio::spawn(async move {
            let mut counts = Counts::default();
            let mut latencies = Latencies::with_capacity(1024);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total || Instant::now() >= deadline {
                    break;
                }
                let (body, _) = templates.render(n);
                let sent = Instant::now();
                if ingest.post(body, &mut counts).await.is_some() {
                    latencies.record(sent.elapsed());
                }
            }
            (counts, latencies)
        }));
    }
    let mut counts = Counts::default();
    let mut latencies = Latencies::with_capacity(plan.single_requests.min(1 << 20));
    for worker in workers {
        let (c, l) = worker.await?;
        counts.add(&c);
        latencies.merge(l);
    }
    let secs = started.elapsed().as_secs_f64();
    results.set("single_event_requests", counts.answered as f64);
    results.set("single_event_failed_requests", counts.failed as f64);
    results.set("single_event_requests_per_s", counts.answered as f64 / secs);
    results.set_opt("single_event_p50_ms", latencies.percentile_ms(50.0));
    results.set_opt("single_event_p99_ms", latencies.percentile_ms(99.0));
    if counts.failed > 0 {
        results.error(format!(
            "single: {} of {} requests failed",
            counts.failed,
            counts.answered + counts.failed
        ));
    }
    let drained =
        super::wait_stored(ctx, stored_before, counts.accepted, plan.drain_timeout).await?;
    match drained {
        Some(at) => results.set(
            "single_event_stored_seconds_after_load",
            at.duration_since(started).as_secs_f64() - secs,
        ),
        None => results.error(format!(
            "single: the consumer did not store the {} accepted events within {:?}",
            counts.accepted, plan.drain_timeout
        )),
    }
    Ok(())
}
