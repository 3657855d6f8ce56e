//! The whole stack as separate processes, each on its own loopback port with
//! its own temporary directory: `nats-server`, `clickhouse-server` and our
//! three binaries. Every part can be killed (SIGKILL), stopped (SIGTERM) and
//! started again on the same port with the same data.
//!
//! Start-up and the process operations block (they poll with deadlines), so
//! the async helpers run them with `block_in_place`: the load keeps running
//! on the other runtime threads meanwhile. Tests need the multi-thread runtime.

use std::time::{Duration, Instant};

use eye_testkit::{ChildService, ClickHouseServer, NatsServer};

use crate::binaries;

/// How long a service may take to report ready after a start or a fault.
pub const READY_DEADLINE: Duration = Duration::from_secs(60);

/// What to start.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Consumer instances (sharing one durable JetStream consumer).
    pub consumers: usize,
    /// Extra flags of the gateway.
    pub gateway_args: Vec<String>,
    /// Extra flags of every consumer.
    pub consumer_args: Vec<String>,
    /// Stream flags (`--stream-*`), given to the gateway and the consumers
    /// alike: both create or update the streams at start-up.
    pub stream_args: Vec<String>,
}

/// The events stream's byte limit unless a scenario sets its own: 1 GiB.
/// JetStream reserves the limit of every file stream on disk when the stream is
/// created, and its default store is 75% of the disk space free at start-up, so
/// the default 8 GiB (plus 10% for each side stream) fails with "insufficient
/// storage resources" on a machine with less than about 13 GB free.
pub const STREAM_MAX_BYTES: &str = "1073741824";

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            consumers: 1,
            gateway_args: Vec::new(),
            consumer_args: Vec::new(),
            stream_args: vec!["--stream-max-bytes".into(), STREAM_MAX_BYTES.into()],
        }
    }
}

/// A running stack.
pub struct Stack {
    /// The JetStream server (kept store and port across restarts).
    pub nats: NatsServer,
    /// The ClickHouse server (kept data and ports across restarts).
    pub clickhouse: ClickHouseServer,
    /// The database the consumer writes and the query service reads.
    pub database: String,
    /// The gateway.
    pub gateway: ChildService,
    /// The consumers.
    pub consumers: Vec<ChildService>,
    /// The query service.
    pub query: ChildService,
    /// A client for the probes.
    pub http: reqwest::Client,
}

/// Runs blocking `f` without stopping the runtime's other tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Stack {
    /// Starts everything and waits until the gateway, every consumer and the
    /// query service answer `/readyz` 200.
    ///
    /// # Panics
    /// If a part cannot start; the message quotes its log.
    pub async fn start(options: StackOptions) -> Stack {
        let started = Instant::now();
        let (nats, clickhouse) = blocking(|| {
            let nats = NatsServer::start().unwrap_or_else(|e| panic!("nats-server: {e}"));
            let clickhouse =
                ClickHouseServer::start().unwrap_or_else(|e| panic!("clickhouse-server: {e}"));
            (nats, clickhouse)
        });
        let database = eye_testkit::unique_name("faults");
        let schemas = eye_testkit::schemas_dir().display().to_string();
        let clients = binaries::clients_file().display().to_string();
        let nats_url = nats.url();
        let clickhouse_url = clickhouse.http_url();

        let consumer_args = {
            let (schemas, nats_url, clickhouse_url, database) = (
                schemas.clone(),
                nats_url.clone(),
                clickhouse_url.clone(),
                database.clone(),
            );
            let extra: Vec<String> = options
                .stream_args
                .iter()
                .chain(&options.consumer_args)
                .cloned()
                .collect();
            move |port: u16| {
                let mut args = strings(&[
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--schemas-dir",
                    &schemas,
                    "--nats-url",
                    &nats_url,
                    "--clickhouse-url",
                    &clickhouse_url,
                    "--clickhouse-database",
                    &database,
                ]);
                let defaults = [
                    ("--batch-wait", "50ms"),
                    ("--lag-poll-interval", "500ms"),
                    ("--retry-max", "1s"),
                    ("--shutdown-grace-secs", "5"),
                    // Redelivery after a crash waits out the ack wait (60 s by
                    // default): shorter here to keep the suite short.
                    ("--ack-wait", "20s"),
                    ("--insert-timeout", "10s"),
                ];
                with_defaults(&mut args, &defaults, &extra);
                args
            }
        };
        let gateway_args = {
            let (schemas, clients, nats_url) = (schemas.clone(), clients.clone(), nats_url.clone());
            let extra: Vec<String> = options
                .stream_args
                .iter()
                .chain(&options.gateway_args)
                .cloned()
                .collect();
            move |port: u16| {
                let mut args = strings(&[
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--schemas-dir",
                    &schemas,
                    "--clients-file",
                    &clients,
                    "--nats-url",
                    &nats_url,
                ]);
                with_defaults(&mut args, &[("--shutdown-grace-secs", "10")], &extra);
                args
            }
        };
        let query_args = {
            let (clients, clickhouse_url, database) =
                (clients.clone(), clickhouse_url.clone(), database.clone());
            move |port: u16| {
                strings(&[
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--clickhouse-url",
                    &clickhouse_url,
                    "--clickhouse-database",
                    &database,
                    "--clickhouse-user",
                    ClickHouseServer::READER_USER,
                    "--clickhouse-password",
                    ClickHouseServer::READER_PASSWORD,
                    "--clients-file",
                    &clients,
                ])
            }
        };

        let (consumers, gateway, query) = blocking(|| {
            let consumers: Vec<ChildService> = (0..options.consumers.max(1))
                .map(|_| start_service(binaries::CONSUMER, &consumer_args))
                .collect();
            let gateway = start_service(binaries::GATEWAY, &gateway_args);
            let query = start_service(binaries::QUERY, &query_args);
            (consumers, gateway, query)
        });
        let stack = Stack {
            nats,
            clickhouse,
            database,
            gateway,
            consumers,
            query,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_else(|e| panic!("HTTP client: {e}")),
        };
        for service in stack.services() {
            if let Err(error) = stack.wait_ready(service, READY_DEADLINE).await {
                panic!("{error}\n{}", stack.log_tails());
            }
        }
        println!(
            "  stack ready in {:.1}s (nats {}, clickhouse {}, gateway {}, {} consumer(s), query {})",
            started.elapsed().as_secs_f64(),
            stack.nats.port(),
            stack.clickhouse.http_port(),
            stack.gateway.port(),
            stack.consumers.len(),
            stack.query.port()
        );
        stack
    }

    fn services(&self) -> impl Iterator<Item = &ChildService> {
        std::iter::once(&self.gateway)
            .chain(&self.consumers)
            .chain(std::iter::once(&self.query))
    }

    /// The status of `GET /readyz` of `service`, or `None` without an answer.
    pub async fn readyz(&self, service: &ChildService) -> Option<u16> {
        self.http
            .get(service.url("/readyz"))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// Polls `/readyz` of `service` until it answers 200; returns how long it took.
    pub async fn wait_ready(
        &self,
        service: &ChildService,
        deadline: Duration,
    ) -> Result<Duration, String> {
        self.wait_readyz(service, deadline, |status| status == Some(200))
            .await
    }

    /// Polls `/readyz` of `service` until it does not answer 200 (not ready, or
    /// no answer); returns how long it took.
    pub async fn wait_not_ready(
        &self,
        service: &ChildService,
        deadline: Duration,
    ) -> Result<Duration, String> {
        self.wait_readyz(service, deadline, |status| status != Some(200))
            .await
    }

    async fn wait_readyz(
        &self,
        service: &ChildService,
        deadline: Duration,
        done: impl Fn(Option<u16>) -> bool,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let status = self.readyz(service).await;
            if done(status) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > deadline {
                return Err(format!(
                    "{}: /readyz still answers {status:?} after {deadline:?}",
                    service.url("/readyz")
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of every process's log, for failure messages.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for (what, tail) in [
            ("nats-server", self.nats.log_tail()),
            ("clickhouse-server", self.clickhouse.log_tail()),
            ("gateway", self.gateway.log_tail()),
            ("query", self.query.log_tail()),
        ] {
            out.push_str(&format!("\n===== {what} =====\n{tail}"));
        }
        for (i, consumer) in self.consumers.iter().enumerate() {
            out.push_str(&format!(
                "\n===== consumer {i} =====\n{}",
                consumer.log_tail()
            ));
        }
        out
    }

    /// A JetStream context on the stack's NATS.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.nats.connect().await)
    }

    /// Messages in stream `name` (0 if it cannot be read).
    pub async fn stream_messages(&self, name: &str) -> Result<u64, String> {
        let js = self.jetstream().await;
        let mut stream = js
            .get_stream(name)
            .await
            .map_err(|e| format!("stream {name}: {e}"))?;
        let info = stream
            .info()
            .await
            .map_err(|e| format!("stream {name} info: {e}"))?;
        Ok(info.state.messages)
    }

    /// Stops ClickHouse (SIGTERM, then SIGKILL after its grace).
    ///
    /// # Panics
    /// If it cannot be stopped.
    pub fn stop_clickhouse(&mut self) {
        blocking(|| self.clickhouse.stop())
            .unwrap_or_else(|e| panic!("stopping clickhouse-server: {e}"));
    }

    /// Starts ClickHouse again (same ports and data) and waits until the first
    /// consumer is ready; returns how long that took after ClickHouse was up.
    ///
    /// # Panics
    /// If ClickHouse cannot start or the consumer does not become ready.
    pub async fn restart_clickhouse(&mut self) -> Duration {
        blocking(|| self.clickhouse.start_again())
            .unwrap_or_else(|e| panic!("restarting clickhouse-server: {e}"));
        self.wait_ready(&self.consumers[0], READY_DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("{e}{}", self.log_tails()))
    }

    /// A ClickHouse client (user `default`) on the stack's database.
    pub fn clickhouse_client(&self) -> clickhouse::Client {
        self.clickhouse.client(&self.database)
    }
}

/// Starts one of our binaries, panicking with its log if it cannot.
fn start_service(name: &'static str, args: &impl Fn(u16) -> Vec<String>) -> ChildService {
    ChildService::start(name, binaries::path(name), args)
        .unwrap_or_else(|error| panic!("starting {name}: {error}"))
}

/// Kills (SIGKILL) `service`, then starts it again on the same port. Returns
/// how long the restart took to answer `/healthz`.
///
/// # Panics
/// If it cannot be killed or started again.
pub fn crash_and_restart(service: &mut ChildService) -> Duration {
    blocking(|| {
        service
            .kill()
            .unwrap_or_else(|e| panic!("kill -9: {e}\n{}", service.log_tail()));
        service
            .start_again()
            .unwrap_or_else(|e| panic!("restart: {e}\n{}", service.log_tail()))
    })
}

/// Appends each default flag that `extra` does not set (a flag given twice
/// is an error), then `extra`.
fn with_defaults(args: &mut Vec<String>, defaults: &[(&str, &str)], extra: &[String]) {
    for (flag, value) in defaults {
        if !extra.iter().any(|e| e == flag) {
            args.extend([(*flag).to_owned(), (*value).to_owned()]);
        }
    }
    args.extend(extra.iter().cloned());
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}
