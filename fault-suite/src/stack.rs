//! The whole stack as separate processes, each on its own loopback port with
//! its own temporary directory: `nats-server`, `clickhouse-server` and our
//! three binaries. Every part can be killed (SIGKILL), stopped (SIGTERM) and
//! started again on the same port with the same data.
//!
//! With [`StackOptions::nats_cluster`], NATS is three `nats-server`s forming a
//! JetStream cluster from the shipped `deploy/nats/cluster.conf` (its users
//! and permissions included), the streams are replicated three times, and the
//! services get every member's URL and log in as their NATS users.
//!
//! Start-up and the process operations block (they poll with deadlines), so
//! the async helpers run them with `block_in_place`: the load keeps running
//! on the other runtime threads meanwhile. Tests need the multi-thread runtime.

use std::time::{Duration, Instant};

use eye_testkit::{ChildService, ClickHouseServer, NatsServer};

use async_nats::jetstream::stream::{ClusterInfo, Info as StreamInfo};

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
    /// Three `nats-server`s in one JetStream cluster
    /// (`deploy/nats/cluster.conf`) instead of one server, and the streams
    /// replicated three times (`--stream-replicas 3` unless `stream_args`
    /// set it).
    pub nats_cluster: bool,
}

/// Members of the NATS cluster with [`StackOptions::nats_cluster`].
pub const CLUSTER_SIZE: usize = 3;

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
            nats_cluster: false,
        }
    }
}

/// A running stack.
pub struct Stack {
    /// The JetStream server (kept store and port across restarts); with
    /// [`StackOptions::nats_cluster`], the cluster's first member.
    pub nats: NatsServer,
    /// The cluster's other members (none on a single server).
    pub nats_peers: Vec<NatsServer>,
    /// The passwords of the NATS users, when NATS requires them (cluster).
    nats_login: Option<NatsLogin>,
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
        let mut options = options;
        let nats_login = options.nats_cluster.then(NatsLogin::fresh);
        let (mut nats_members, clickhouse) = blocking(|| {
            let nats = match &nats_login {
                None => NatsServer::start().map(|server| vec![server]),
                Some(login) => login.server().start_cluster(CLUSTER_SIZE),
            }
            .unwrap_or_else(|e| panic!("nats-server: {e}"));
            let clickhouse =
                ClickHouseServer::start().unwrap_or_else(|e| panic!("clickhouse-server: {e}"));
            (nats, clickhouse)
        });
        let nats = nats_members.remove(0);
        let nats_peers = nats_members;
        let database = eye_testkit::unique_name("faults");
        let schemas = eye_testkit::schemas_dir().display().to_string();
        let clients = binaries::clients_file().display().to_string();
        let nats_url = std::iter::once(&nats)
            .chain(&nats_peers)
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",");
        let clickhouse_url = clickhouse.http_url();
        if let Some(login) = &nats_login {
            if !options.stream_args.iter().any(|a| a == "--stream-replicas") {
                options
                    .stream_args
                    .extend(["--stream-replicas".to_owned(), CLUSTER_SIZE.to_string()]);
            }
            options.gateway_args.extend(login.flags(true));
            options.consumer_args.extend(login.flags(false));
        }

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
            nats_peers,
            nats_login,
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
            stack
                .nats_members()
                .map(|member| member.port().to_string())
                .collect::<Vec<_>>()
                .join(" "),
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
        for member in self.nats_members() {
            out.push_str(&format!(
                "\n===== nats-server {} =====\n{}",
                member.name(),
                member.log_tail()
            ));
        }
        for (what, tail) in [
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

    /// A JetStream context on the stack's NATS (on a cluster: any live
    /// member, as the consumer's user, which may read the streams' state).
    ///
    /// # Panics
    /// If no member can be reached.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let Some(login) = &self.nats_login else {
            return async_nats::jetstream::new(self.nats.connect().await);
        };
        let urls: Vec<String> = self.nats_members().map(NatsServer::url).collect();
        let client = async_nats::ConnectOptions::with_user_and_password(
            CONSUMER_USER.to_owned(),
            login.consumer.clone(),
        )
        .connection_timeout(Duration::from_secs(5))
        .connect(urls.as_slice())
        .await
        .unwrap_or_else(|e| panic!("connecting to the NATS cluster {urls:?}: {e}"));
        async_nats::jetstream::new(client)
    }

    /// Every NATS server: the first, then the cluster's other members.
    pub fn nats_members(&self) -> impl Iterator<Item = &NatsServer> {
        std::iter::once(&self.nats).chain(&self.nats_peers)
    }

    /// The NATS server named `name` (`server_name`, as JetStream names a
    /// stream's leader and replicas).
    pub fn nats_member_mut(&mut self, name: &str) -> Option<&mut NatsServer> {
        std::iter::once(&mut self.nats)
            .chain(&mut self.nats_peers)
            .find(|member| member.name() == name)
    }

    /// Stream `name`'s replication state: its leader and replicas (`None`
    /// on a single server).
    pub async fn stream_cluster(&self, name: &str) -> Result<Option<ClusterInfo>, String> {
        // Polled during a leader election: a stream without a leader may not
        // answer, and the default 5 s would blur the measured time.
        let info = self.stream_info(name, Duration::from_secs(1)).await?;
        Ok(info.cluster)
    }

    /// Messages in stream `name` (0 if it cannot be read).
    pub async fn stream_messages(&self, name: &str) -> Result<u64, String> {
        let info = self.stream_info(name, Duration::from_secs(5)).await?;
        Ok(info.state.messages)
    }

    /// Stream `name`'s info, asked with JetStream request timeout `timeout`.
    async fn stream_info(&self, name: &str, timeout: Duration) -> Result<StreamInfo, String> {
        let mut js = self.jetstream().await;
        js.set_timeout(timeout);
        let mut stream = js
            .get_stream(name)
            .await
            .map_err(|e| format!("stream {name}: {e}"))?;
        stream
            .info()
            .await
            .cloned()
            .map_err(|e| format!("stream {name} info: {e}"))
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

/// The gateway's NATS user in `deploy/nats/auth.conf`.
const GATEWAY_USER: &str = "eye_gateway";
/// The consumer's NATS user in `deploy/nats/auth.conf`.
const CONSUMER_USER: &str = "eye_consumer";

/// Fresh passwords of the users in `deploy/nats/auth.conf`.
struct NatsLogin {
    gateway: String,
    consumer: String,
    demo: String,
}

impl NatsLogin {
    fn fresh() -> NatsLogin {
        NatsLogin {
            gateway: eye_testkit::unique_name("gw"),
            consumer: eye_testkit::unique_name("co"),
            demo: eye_testkit::unique_name("de"),
        }
    }

    /// A member of the shipped cluster configuration with these passwords.
    fn server(&self) -> eye_testkit::NatsServerBuilder {
        let config =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/cluster.conf");
        NatsServer::builder()
            .config_file(config)
            .env("EYE_NATS_GATEWAY_PASSWORD", &self.gateway)
            .env("EYE_NATS_CONSUMER_PASSWORD", &self.consumer)
            .env("EYE_NATS_DEMO_PASSWORD", &self.demo)
    }

    /// The NATS flags of the gateway, or else of the consumer.
    fn flags(&self, gateway: bool) -> [String; 4] {
        let (user, password) = if gateway {
            (GATEWAY_USER, &self.gateway)
        } else {
            (CONSUMER_USER, &self.consumer)
        };
        [
            "--nats-user".to_owned(),
            user.to_owned(),
            "--nats-password".to_owned(),
            password.clone(),
        ]
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
