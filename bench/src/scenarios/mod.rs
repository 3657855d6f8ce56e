//! The scenarios, and what they share: waiting for the consumer to store what
//! the gateway accepted, and reading the services' resources.

pub mod batched;
pub mod ceilings;
pub mod queries;
pub mod single;
pub mod steady;

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use serde::Deserialize;

use crate::http::{Conn, Target};
use crate::{procstat, Context, Results};

/// Pause between two reads of the consumer's counter.
const STORED_POLL: Duration = Duration::from_millis(100);

/// The processes whose peak memory is reported, and the result key of each.
const MEASURED: [(&str, &str); 5] = [
    ("gateway", "gateway_rss_mb"),
    ("consumer", "consumer_rss_mb"),
    ("query", "query_rss_mb"),
    ("nats", "nats_rss_mb"),
    ("clickhouse", "clickhouse_rss_mb"),
];

/// Waits until the consumer has stored `expected` events more than `base`,
/// at most `timeout`; returns when it had (or `None` on timeout).
pub async fn wait_stored(
    ctx: &Context,
    base: f64,
    expected: u64,
    timeout: Duration,
) -> anyhow::Result<Option<Instant>> {
    let deadline = Instant::now() + timeout;
    loop {
        let stored = ctx.stored().await? - base;
        if stored >= expected as f64 {
            return Ok(Some(Instant::now()));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(STORED_POLL).await;
    }
}

/// Peak resident memory of every measured process that was given.
pub fn resources(ctx: &Context, results: &mut Results) {
    for (name, key) in MEASURED {
        if let Some(pid) = ctx.config.pid(name) {
            match procstat::peak_rss_mb(pid) {
                Some(mb) => results.set(key, mb),
                None => results.error(format!("{name} (pid {pid}): no /proc/{pid}/status")),
            }
        }
    }
}

/// CPU seconds of the measured processes now, by name.
pub fn cpu_snapshot(ctx: &Context) -> Vec<(&'static str, f64)> {
    MEASURED
        .iter()
        .filter_map(|(name, _)| Some((*name, ctx.cpu(name)?)))
        .collect()
}

/// Records `<name>_cpu_s_per_million_events` from two snapshots around `events`.
pub fn cpu_per_million(
    results: &mut Results,
    before: &[(&'static str, f64)],
    after: &[(&'static str, f64)],
    events: u64,
) {
    if events == 0 {
        return;
    }
    for (name, start) in before {
        if let Some((_, end)) = after.iter().find(|(n, _)| n == name) {
            results.set(
                &format!("{name}_cpu_s_per_million_events"),
                (end - start) / (events as f64 / 1e6),
            );
        }
    }
}

/// The part of the gateway's answer the benchmark reads.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Verdict {
    /// Events accepted.
    pub accepted: u64,
    /// Events rejected.
    pub rejected: u64,
}

/// What a load worker counted.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Requests answered 202 or 422 with a per-event answer.
    pub answered: u64,
    /// Events accepted.
    pub accepted: u64,
    /// Events rejected.
    pub rejected: u64,
    /// Requests answered otherwise, or not answered.
    pub failed: u64,
    /// Sends that started late (steady rate only).
    pub late: u64,
}

impl Counts {
    /// Adds another worker's counts.
    pub fn add(&mut self, other: &Counts) {
        self.answered += other.answered;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.late += other.late;
    }
}

/// A load worker's way to the gateway: one keep-alive connection, opened on
/// first use and again after a failure.
pub struct Ingest {
    target: Target,
    bearer: HeaderValue,
    conn: Option<Conn>,
}

impl Ingest {
    /// A worker's connection (opened at the first post).
    pub fn new(ctx: &Context) -> Ingest {
        Ingest {
            target: ctx.gateway.clone(),
            bearer: ctx.write_bearer.clone(),
            conn: None,
        }
    }

    /// Posts `body` to `/v1/events` and counts the outcome; the verdict when
    /// the gateway answered per event (202 or 422).
    pub async fn post(&mut self, body: Bytes, counts: &mut Counts) -> Option<Verdict> {
        if self.conn.is_none() {
            self.conn = Conn::open(&self.target).await.ok();
        }
        let Some(conn) = self.conn.as_mut() else {
            counts.failed += 1;
            return None;
        };
        let answer = match conn.post_json("/v1/events", &self.bearer, body).await {
            Ok(answer) => answer,
            Err(_) => {
                self.conn = None;
                counts.failed += 1;
                return None;
            }
        };
        let verdict = (answer.status == 202 || answer.status == 422)
            .then(|| serde_json::from_slice::<Verdict>(&answer.body).ok())
            .flatten();
        match verdict {
            Some(v) => {
                counts.answered += 1;
                counts.accepted += v.accepted;
                counts.rejected += v.rejected;
            }
            None => counts.failed += 1,
        }
        verdict
    }
}
