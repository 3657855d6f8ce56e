//! `eye-bench`: measures The Eye on this machine against a running stack
//! (`./deploy/bench.sh` starts one as `./deploy/local.sh up` does, runs this,
//! and stops it).
//!
//! The scenarios (issue 8), each bounded in count and in time:
//! - [`scenarios::ceilings`]: JetStream pipelined publish of the gateway's
//!   payloads and headers on a stream of its own, and ClickHouse bulk insert of
//!   the consumer's rows into a scratch database — the references.
//! - [`scenarios::batched`]: 100-event requests at saturating concurrency;
//!   accepted and stored events per second, consumer lag.
//! - [`scenarios::single`]: one event per request on keep-alive connections.
//! - [`scenarios::steady`]: 5,000 events/s open-loop; gateway latency and the
//!   time from accepted to readable through the query service.
//! - [`scenarios::queries`]: bulk-loads `events` up to 10 million rows, then
//!   session timelines, category + hour ranges and session listings.
//! - resources: peak RSS ([`procstat`]) of the services at the end; CPU per
//!   million events is taken around the batched scenario.
//!
//! # Map of the modules
//! [`config`] (flags, the [`config::Plan`] of each scale), [`traffic`]
//! (realistic events), [`http`] (lean keep-alive connections),
//! [`templates`] (cheap unique request bodies), [`stats`] (percentiles),
//! [`procstat`] (`/proc`), [`promtext`] (`/metrics`),
//! [`report`] (targets, table, JSON), [`rng`].

pub mod config;
pub mod http;
pub mod procstat;
pub mod promtext;
pub mod report;
pub mod rng;
pub mod scenarios;
pub mod stats;
pub mod templates;
pub mod traffic;

use std::time::Instant;

use hyper::header::HeaderValue;
use serde_json::{json, Value};

pub use config::{Config, Plan, Scale, Scenario};
pub use report::Results;

use crate::http::{HttpError, Target};

/// What `eye-bench --help` says the binary is.
pub const ABOUT: &str = "The Eye's benchmark: JetStream and ClickHouse ceilings, batched and single-event ingest, latency at a steady rate, queries on 10 million events, and resources, against a running stack on loopback.";

/// What every scenario works with.
pub struct Context {
    /// The configuration.
    pub config: Config,
    /// Counts and time bounds.
    pub plan: Plan,
    /// The gateway.
    pub gateway: Target,
    /// The query service.
    pub query: Target,
    /// The consumer's endpoints.
    pub consumer: Target,
    /// `Bearer <write key>`.
    pub write_bearer: HeaderValue,
    /// `Bearer <read token>`.
    pub read_bearer: HeaderValue,
}

impl Context {
    /// Resolves the targets of `config`.
    pub fn new(config: Config) -> Result<Context, HttpError> {
        Ok(Context {
            plan: Plan::new(&config),
            gateway: Target::parse(&config.gateway_url)?,
            query: Target::parse(&config.query_url)?,
            consumer: Target::parse(&config.consumer_url)?,
            write_bearer: http::bearer(&config.write_key),
            read_bearer: http::bearer(&config.read_token),
            config,
        })
    }

    /// The consumer's count of stored events (`eye_consumer_events_stored_total`).
    pub async fn stored(&self) -> Result<f64, promtext::MetricError> {
        promtext::fetch(&self.consumer, "eye_consumer_events_stored_total").await
    }

    /// CPU seconds of the measured process `name`, if it was given.
    pub fn cpu(&self, name: &str) -> Option<f64> {
        let pid = self.config.pid(name)?;
        procstat::cpu_seconds(pid, self.config.clk_tck)
    }
}

/// Runs the configured scenarios in order and returns what they measured;
/// a scenario that fails is recorded and the next one still runs.
pub async fn run(config: Config) -> Results {
    let mut results = Results::default();
    let started = Instant::now();
    results.info("machine", machine());
    results.info("git_commit", Value::from(config.git_commit.clone()));
    results.info(
        "scale",
        Value::from(format!("{:?}", config.scale).to_lowercase()),
    );
    let ctx = match Context::new(config) {
        Ok(ctx) => ctx,
        Err(error) => {
            results.error(error.to_string());
            return results;
        }
    };
    results.info("plan", plan_json(&ctx.plan));
    for scenario in ctx.config.scenarios.clone() {
        let at = Instant::now();
        eprintln!("eye-bench: {scenario:?} ...");
        let outcome = match scenario {
            Scenario::Ceilings => scenarios::ceilings::run(&ctx, &mut results).await,
            Scenario::Batched => scenarios::batched::run(&ctx, &mut results).await,
            Scenario::Single => scenarios::single::run(&ctx, &mut results).await,
            Scenario::Steady => scenarios::steady::run(&ctx, &mut results).await,
            Scenario::Queries => scenarios::queries::run(&ctx, &mut results).await,
        };
        if let Err(error) = outcome {
            results.error(format!("{scenario:?}: {error:#}"));
        }
        eprintln!(
            "eye-bench: {scenario:?} done in {:.1} s",
            at.elapsed().as_secs_f64()
        );
    }
    scenarios::resources(&ctx, &mut results);
    results.set("bench_seconds", started.elapsed().as_secs_f64());
    results
}

/// Cores and CPU model of this machine.
fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim())
        .to_owned();
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024);
    json!({"cores": cores, "cpu_model": model, "memory_mb": memory_mb})
}

fn plan_json(plan: &Plan) -> Value {
    json!({
        "batch_events": plan.batch_events,
        "batch_concurrency": plan.batch_concurrency,
        "single_concurrency": plan.single_concurrency,
        "steady_rate": plan.steady_rate,
        "steady_seconds": plan.steady_time.as_secs_f64(),
        "e2e_every": plan.e2e_every,
        "stored_events": plan.stored_events,
        "query_requests": plan.query_requests,
        "sessions": plan.sessions,
    })
}
