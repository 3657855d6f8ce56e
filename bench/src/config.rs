//! What `eye-bench` is pointed at and how much load it sends: flags with
//! environment-variable fallbacks (`eye-bench --help` lists them), and the
//! [`Plan`] of each scale — every load loop bounded in count and in time.

use std::path::PathBuf;
use std::time::Duration;

use eye_server_kit::clickhouse::ClickHouseConfig;

/// Everything `eye-bench` can be told.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "eye-bench", version, about = crate::ABOUT)]
pub struct Config {
    /// The ingest gateway (loopback only).
    #[arg(
        long,
        env = "EYE_BENCH_GATEWAY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway_url: String,
    /// The query service (loopback only).
    #[arg(
        long,
        env = "EYE_BENCH_QUERY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub query_url: String,
    /// The consumer's health and metrics endpoint (loopback only).
    #[arg(
        long,
        env = "EYE_BENCH_CONSUMER_URL",
        default_value = "http://127.0.0.1:8082"
    )]
    pub consumer_url: String,
    /// NATS, for the JetStream publish ceiling (on a stream of its own).
    #[arg(
        long,
        env = "EYE_BENCH_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// ClickHouse's HTTP interface, for the insert ceiling (in a scratch
    /// database) and the bulk load of the query scenario.
    #[arg(
        long,
        env = "EYE_BENCH_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    pub clickhouse_url: String,
    /// The database the consumer writes and the query service reads.
    #[arg(long, env = "EYE_BENCH_CLICKHOUSE_DATABASE", default_value = "eye")]
    pub clickhouse_database: String,
    /// A ClickHouse user that may create databases and insert.
    #[arg(long, env = "EYE_BENCH_CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    /// Its password (empty: none).
    #[arg(
        long,
        env = "EYE_BENCH_CLICKHOUSE_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub clickhouse_password: String,
    /// The client id the write key belongs to.
    #[arg(long, env = "EYE_BENCH_CLIENT", default_value = "demo")]
    pub client_id: String,
    /// Write key of that client.
    #[arg(
        long,
        env = "EYE_BENCH_WRITE_KEY",
        default_value = "eye_demo_write_key",
        hide_env_values = true
    )]
    pub write_key: String,
    /// Read token for the query service.
    #[arg(
        long,
        env = "EYE_BENCH_READ_TOKEN",
        default_value = "eye_demo_read_token",
        hide_env_values = true
    )]
    pub read_token: String,
    /// A process to measure, as `name=pid` (repeatable): `gateway`, `consumer`
    /// and `query` give the resource figures; others (`nats`, `clickhouse`)
    /// are reported too.
    #[arg(long = "pid", value_parser = parse_pid, value_name = "NAME=PID")]
    pub pids: Vec<(String, u32)>,
    /// `full` (the figures, minutes) or `smoke` (a few seconds, tiny counts).
    #[arg(long, value_enum, default_value = "full")]
    pub scale: Scale,
    /// Scenarios to run, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ceilings,batched,single,steady,queries"
    )]
    pub scenarios: Vec<Scenario>,
    /// Where to write the results as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    pub clk_tck: u64,
    /// The commit being measured, for the results.
    #[arg(long, env = "EYE_BENCH_GIT_COMMIT", default_value = "unknown")]
    pub git_commit: String,
    /// The consumer's --batch-size, used as the batch of the ClickHouse
    /// ceiling so both insert alike (the consumer's variable and default).
    #[arg(long, env = "EYE_BATCH_SIZE", default_value_t = 10_000)]
    pub consumer_batch_size: usize,
    /// How the batched scenario sends: through the client crate (`client`,
    /// as applications do) or pre-made bodies on lean connections (`raw`,
    /// the least load-generator CPU).
    #[arg(long, value_enum, default_value = "client")]
    pub sender: Sender,
    /// Events per request in the batched scenario [scale's plan: 100].
    #[arg(long)]
    pub batch_events: Option<usize>,
    /// Concurrent requests in the batched scenario.
    #[arg(long)]
    pub batch_concurrency: Option<usize>,
    /// Concurrent connections in the single-event scenario.
    #[arg(long)]
    pub single_concurrency: Option<usize>,
    /// Events per second of the steady scenario [5000].
    #[arg(long)]
    pub steady_rate: Option<u32>,
    /// Events stored before the query scenario (bulk-loaded up to this count).
    #[arg(long)]
    pub stored_events: Option<u64>,
}

/// How much load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// The real figures (a few minutes).
    Full,
    /// A few seconds with tiny counts, for the test suite.
    Smoke,
}

/// How batched requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sender {
    /// The client crate (`eye-client`).
    Client,
    /// Pre-made bodies on the benchmark's own connections.
    Raw,
}

/// A scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// JetStream publish and ClickHouse insert ceilings.
    Ceilings,
    /// 100-event requests at saturating concurrency.
    Batched,
    /// One event per request.
    Single,
    /// A steady rate with latencies, and accepted-to-readable.
    Steady,
    /// Reads on the stored events (bulk-loaded up to the planned count).
    Queries,
}

fn parse_pid(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=PID"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("{text:?}: {pid:?} is not a process id"))?;
    Ok((name.to_owned(), pid))
}

/// Counts and time bounds of every scenario. Each loop stops at whichever
/// bound it reaches first.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Sessions the traffic spreads over.
    pub sessions: usize,
    /// JetStream ceiling: messages, time, and acknowledgements awaited at once.
    pub nats_messages: usize,
    /// See `nats_messages`.
    pub nats_time: Duration,
    /// See `nats_messages`.
    pub nats_window: usize,
    /// ClickHouse ceiling: rows and time.
    pub clickhouse_rows: usize,
    /// See `clickhouse_rows`.
    pub clickhouse_time: Duration,
    /// Batched ingest: events in all, time, events per request, requests at once.
    pub batched_events: usize,
    /// See `batched_events`.
    pub batched_time: Duration,
    /// See `batched_events`.
    pub batch_events: usize,
    /// See `batched_events`.
    pub batch_concurrency: usize,
    /// Longest wait for the consumer to store what was accepted.
    pub drain_timeout: Duration,
    /// Single events: requests, time, connections.
    pub single_requests: usize,
    /// See `single_requests`.
    pub single_time: Duration,
    /// See `single_requests`.
    pub single_concurrency: usize,
    /// Steady rate: events per second, for how long, connections, and one
    /// traced event (accepted to readable) every `e2e_every` events.
    pub steady_rate: u32,
    /// See `steady_rate`.
    pub steady_time: Duration,
    /// See `steady_rate`.
    pub steady_connections: usize,
    /// See `steady_rate`.
    pub e2e_every: usize,
    /// Pause before each read of a traced event. Reads go through the query
    /// service to ClickHouse and cost its CPU: one reader, this pause and
    /// `e2e_every` keep the measurement from loading the pipeline it
    /// measures (about 5 traced events a second, the oldest read every 50 ms
    /// until it shows).
    pub e2e_poll: Duration,
    /// Longest a traced event may take to become readable.
    pub e2e_timeout: Duration,
    /// Stored events for the query scenario, the bulk load's time bound, and
    /// rows per INSERT … SELECT.
    pub stored_events: u64,
    /// See `stored_events`.
    pub load_time: Duration,
    /// See `stored_events`.
    pub load_chunk: u64,
    /// Longest wait for ClickHouse's merges after the load.
    pub settle_time: Duration,
    /// Requests per query kind, and the time bound of each kind.
    pub query_requests: usize,
    /// See `query_requests`.
    pub query_time: Duration,
}

impl Plan {
    /// The plan of `scale`, with the overrides of `config`.
    pub fn new(config: &Config) -> Plan {
        let mut plan = match config.scale {
            Scale::Full => Plan::full(),
            Scale::Smoke => Plan::smoke(),
        };
        if let Some(n) = config.batch_events {
            plan.batch_events = n.max(1);
        }
        if let Some(n) = config.batch_concurrency {
            plan.batch_concurrency = n.max(1);
        }
        if let Some(n) = config.single_concurrency {
            plan.single_concurrency = n.max(1);
        }
        if let Some(n) = config.steady_rate {
            plan.steady_rate = n.max(1);
        }
        if let Some(n) = config.stored_events {
            plan.stored_events = n;
        }
        plan
    }

    /// The figures: about five minutes on two cores.
    pub fn full() -> Plan {
        let s = Duration::from_secs;
        Plan {
            sessions: 50_000,
            nats_messages: 400_000,
            nats_time: s(8),
            nats_window: 4096,
            clickhouse_rows: 400_000,
            clickhouse_time: s(8),
            batched_events: 3_000_000,
            batched_time: s(30),
            batch_events: 100,
            batch_concurrency: 32,
            drain_timeout: s(90),
            single_requests: 400_000,
            single_time: s(15),
            single_concurrency: 32,
            steady_rate: 5000,
            steady_time: s(20),
            steady_connections: 64,
            e2e_every: 1000,
            e2e_poll: Duration::from_millis(50),
            e2e_timeout: s(10),
            stored_events: 10_000_000,
            load_time: s(240),
            load_chunk: 1_000_000,
            settle_time: s(60),
            query_requests: 300,
            query_time: s(40),
        }
    }

    /// A few seconds, tiny counts: for the test suite (no figures).
    pub fn smoke() -> Plan {
        let s = Duration::from_secs;
        Plan {
            sessions: 50,
            nats_messages: 2000,
            nats_time: s(5),
            nats_window: 256,
            clickhouse_rows: 3000,
            clickhouse_time: s(5),
            batched_events: 2000,
            batched_time: s(5),
            batch_events: 100,
            batch_concurrency: 4,
            drain_timeout: s(30),
            single_requests: 300,
            single_time: s(3),
            single_concurrency: 4,
            steady_rate: 200,
            steady_time: s(2),
            steady_connections: 8,
            e2e_every: 40,
            e2e_poll: Duration::from_millis(20),
            e2e_timeout: s(10),
            stored_events: 20_000,
            load_time: s(30),
            load_chunk: 10_000,
            settle_time: s(5),
            query_requests: 20,
            query_time: s(10),
        }
    }
}

impl Config {
    /// ClickHouse as the writing user, in `database`.
    pub fn clickhouse(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.clickhouse_url.clone(),
            database: database.to_owned(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone(),
        }
    }

    /// The pid given for `name`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.pids.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn command_line_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn pids_and_overrides_parse() {
        let config = Config::parse_from([
            "eye-bench",
            "--pid",
            "gateway=42",
            "--scale",
            "smoke",
            "--scenarios",
            "batched,queries",
            "--batch-concurrency",
            "7",
        ]);
        assert_eq!(config.pid("gateway"), Some(42));
        assert_eq!(config.pid("query"), None);
        assert_eq!(config.scenarios, [Scenario::Batched, Scenario::Queries]);
        let plan = Plan::new(&config);
        assert_eq!(plan.batch_concurrency, 7);
        assert_eq!(plan.batch_events, 100);
        assert!(Config::try_parse_from(["eye-bench", "--pid", "gateway"]).is_err());
    }
}
