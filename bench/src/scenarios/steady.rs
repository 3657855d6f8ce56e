//! Latency at a steady rate: single events sent open-loop at 5,000 per second
//! (event `i` is due at `start + i / rate`, whatever happened to earlier
//! ones), over enough connections that a slow answer never delays the next
//! send. Gateway latency p50/p99/p999 per request; and one event in
//! `e2e_every`, of a session of its own, is traced from its 202 until
//! `GET /v1/sessions/{id}/events` on the query service returns it. One tracer
//! reads the oldest traced event every `e2e_poll`, so the figure is an upper
//! bound accurate to that pause, and the reads stay few however far behind
//! the pipeline falls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eye_contract::Timestamp;
use hyper::header::HeaderValue;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Counts, Ingest};
use crate::http::{Conn, Target};
use crate::stats::Latencies;
use crate::templates::Templates;
use crate::traffic::Traffic;
use crate::{Context, Results};

/// Bodies generated ahead of the run.
const TEMPLATES: usize = 5000;
/// A send that starts later than this after its due time counts as late (the
/// generator could not keep the rate).
const LATE: Duration = Duration::from_millis(5);

/// Runs the scenario.
pub async fn run(ctx: &Context, results: &mut Results) -> anyhow::Result<()> {
    let plan = &ctx.plan;
    let mut traffic = Traffic::new(0x57EAD, plan.sessions);
    let templates = Arc::new(Templates::new(&mut traffic, TEMPLATES, 1, Timestamp::now()));
    // The traced events, made ahead too: one new session each.
    let traced_count = (plan.steady_rate as u64 * plan.steady_time.as_secs().max(1))
        .div_ceil(plan.e2e_every as u64) as usize;
    let traced: Arc<Vec<(Uuid, Bytes)>> = Arc::new(
        (0..traced_count)
            .map(|_| {
                let sample = traffic.sample_new_session(Timestamp::now());
                let body = serde_json::to_vec(&sample.to_wire()).unwrap_or_default();
                (sample.session_id, Bytes::from(body))
            })
            .collect(),
    );
    let total = plan.steady_rate as u64 * plan.steady_time.as_secs().max(1);
    let interval = Duration::from_secs(1).as_secs_f64() / f64::from(plan.steady_rate);
    let stored_before = ctx.stored().await?;
    // One tracer reads the traced events oldest first (the consumer stores in
    // order), so at most one read is in flight: the measurement never adds
    // more than ~20 reads a second to the pipeline it measures, however far
    // behind the pipeline falls.
    let (traced_tx, traced_rx) = mpsc::unbounded_channel::<(Uuid, Instant)>();
    let tracer = tokio::spawn(
        Tracer {
            query: ctx.query.clone(),
            read: ctx.read_bearer.clone(),
            poll: plan.e2e_poll,
            timeout: plan.e2e_timeout,
        }
        .run(traced_rx),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now() + Duration::from_millis(50);
    let hard_stop = started + plan.steady_time + Duration::from_secs(10);

    let mut workers = Vec::new();
    for _ in 0..plan.steady_connections {
        let (templates, traced, next) = (templates.clone(), traced.clone(), next.clone());
        let traced_tx = traced_tx.clone();
        let mut ingest = Ingest::new(ctx);
        let every = plan.e2e_every as u64;
        workers.push(tokio::spawn(async move {
            let mut counts = Counts::default();
            let mut latencies = Latencies::with_capacity(1024);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = started + Duration::from_secs_f64(i as f64 * interval);
                if due >= hard_stop {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let trace = (i % every == 0)
                    .then(|| traced.get(usize::try_from(i / every).ok()?))
                    .flatten();
                let body = match trace {
                    Some((_, body)) => body.clone(),
                    None => templates.render(i).0,
                };
                let sent = Instant::now();
                if sent.duration_since(due) > LATE {
                    counts.late += 1;
                }
                let Some(verdict) = ingest.post(body, &mut counts).await else {
                    continue;
                };
                let accepted_at = Instant::now();
                latencies.record(accepted_at - sent);
                if let (Some((session, _)), 1) = (trace, verdict.accepted) {
                    // The tracer ends only after every sender is done.
                    let _sent = traced_tx.send((*session, accepted_at));
                }
            }
            (counts, latencies)
        }));
    }
    let mut counts = Counts::default();
    let mut latencies = Latencies::with_capacity(total as usize);
    for worker in workers {
        let (c, l) = worker.await?;
        counts.add(&c);
        latencies.merge(l);
    }
    let secs = started.elapsed().as_secs_f64();
    drop(traced_tx);
    let (mut e2e, missing) = tracer.await?;

    results.set("steady_requests", counts.answered as f64);
    results.set("steady_failed_requests", counts.failed as f64);
    results.set("steady_late_sends", counts.late as f64);
    results.set(
        "steady_achieved_events_per_s",
        counts.answered as f64 / secs,
    );
    results.set_opt("gateway_p50_ms_at_5k", latencies.percentile_ms(50.0));
    results.set_opt("gateway_p99_ms_at_5k", latencies.percentile_ms(99.0));
    results.set_opt("gateway_p999_ms_at_5k", latencies.percentile_ms(99.9));
    results.set("e2e_samples", e2e.len() as f64);
    results.set_opt("e2e_p50_ms_at_5k", e2e.percentile_ms(50.0));
    results.set_opt("e2e_p99_ms_at_5k", e2e.percentile_ms(99.0));
    results.set("e2e_poll_ms", plan.e2e_poll.as_secs_f64() * 1000.0);
    if missing > 0 {
        results.error(format!(
            "steady: {missing} traced events were not readable within {:?}",
            plan.e2e_timeout
        ));
    }
    if counts.failed > 0 {
        results.error(format!(
            "steady: {} of {} requests failed",
            counts.failed,
            counts.answered + counts.failed
        ));
    }
    if super::wait_stored(ctx, stored_before, counts.accepted, plan.drain_timeout)
        .await?
        .is_none()
    {
        results.error(format!(
            "steady: the consumer did not store the {} accepted events within {:?}",
            counts.accepted, plan.drain_timeout
        ));
    }
    Ok(())
}

/// Reads traced events back through the query service.
struct Tracer {
    query: Target,
    read: HeaderValue,
    poll: Duration,
    timeout: Duration,
}

impl Tracer {
    /// Takes `(session, accepted at)` until the channel closes; returns the
    /// accepted-to-readable times and how many never became readable within
    /// the timeout. The oldest pending event is read every `poll` (first
    /// `poll` after it was accepted); once it shows, the next one is read
    /// at once.
    async fn run(self, mut traced: mpsc::UnboundedReceiver<(Uuid, Instant)>) -> (Latencies, u64) {
        let mut e2e = Latencies::default();
        let mut missing = 0u64;
        let mut pending: VecDeque<(Uuid, Instant)> = VecDeque::new();
        let mut conn: Option<Conn> = None;
        let mut open = true;
        loop {
            while let Ok(item) = traced.try_recv() {
                pending.push_back(item);
            }
            let Some(&(session, accepted_at)) = pending.front() else {
                if !open {
                    return (e2e, missing);
                }
                match traced.recv().await {
                    Some(item) => pending.push_back(item),
                    None => open = false,
                }
                continue;
            };
            let first_read = accepted_at + self.poll;
            if Instant::now() < first_read {
                tokio::time::sleep_until(first_read.into()).await;
            }
            if conn.is_none() {
                conn = Conn::open(&self.query).await.ok();
            }
            let path = format!("/v1/sessions/{session}/events");
            let shown = match conn.as_mut() {
                Some(c) => match c.get(&path, Some(&self.read)).await {
                    Ok(answer) => answer.status == 200 && has_events(&answer.body),
                    Err(_) => {
                        conn = None;
                        false
                    }
                },
                None => false,
            };
            if shown {
                e2e.record(accepted_at.elapsed());
                pending.pop_front();
            } else if accepted_at.elapsed() >= self.timeout {
                missing += 1;
                pending.pop_front();
            } else {
                tokio::time::sleep(self.poll).await;
            }
        }
    }
}

/// Whether a page answer (`{"events": [...]}`) holds at least one event.
pub fn has_events(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("events")?.as_array().map(|a| !a.is_empty()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_with_and_without_events() {
        assert!(has_events(
            br#"{"events":[{"event_id":"x"}],"next_cursor":null}"#
        ));
        assert!(!has_events(br#"{"events":[],"next_cursor":null}"#));
        assert!(!has_events(b"not json"));
    }
}
