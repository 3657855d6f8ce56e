//! A throwaway `nats-server` with JetStream.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use crate::binary::NATS_SERVER;
use crate::ports::free_ports;
use crate::probe;
use crate::process::ServerProcess;
use crate::HarnessError;

/// Deadline for a start (or restart) to be ready; typical is a few ms.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts on fresh ports after losing a port race.
const PORT_ATTEMPTS: usize = 5;
/// How long [`NatsServer::stop`] waits for a clean exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// JetStream's storage limit in the harness's own configuration (when no file
/// is given). JetStream's default is 75% of the disk space free at start-up,
/// and creating a file stream reserves its whole byte limit against it: the
/// services' default of 8 GiB for EYE_EVENTS (plus a tenth per side stream) is
/// refused with "insufficient storage resources" on a machine with less than
/// ~13 GiB free, as a CI machine once had. Tests write megabytes, so an
/// explicit limit makes them independent of the free space.
const DEFAULT_MAX_FILE_STORE: &str = "1TB";

/// A `nats-server -js` on 127.0.0.1, with its own JetStream store in a
/// temporary directory (1 TB of JetStream storage whatever the free disk,
/// unless a configuration file says otherwise). Killed, and its directory
/// removed, when dropped.
///
/// Fault tests can [`kill`](NatsServer::kill) it (SIGKILL, like a crash) or
/// [`stop`](NatsServer::stop) it (SIGTERM), and
/// [`start_again`](NatsServer::start_again) on the same port with the same
/// store, so clients reconnect to the same URL and find their streams.
#[derive(Debug)]
pub struct NatsServer {
    process: ServerProcess,
    port: u16,
    monitor_port: u16,
    name: String,
    store_dir: PathBuf,
    started_in: Duration,
    // Last: removed after the process is killed (fields drop in order).
    _dir: TempDir,
}

impl NatsServer {
    /// Starts a server on free loopback ports and waits until it is ready:
    /// it accepts a client connection, reports JetStream enabled, and its
    /// `/healthz?js-enabled-only=true` answers 200.
    ///
    /// Blocks the calling thread (typically for a few milliseconds).
    pub fn start() -> Result<NatsServer, HarnessError> {
        NatsServer::builder().start()
    }

    /// A server with a configuration file or extra environment variables (for
    /// instance the shipped `deploy/nats/local.conf` with its users);
    /// [`NatsServerBuilder::start`] starts it like [`NatsServer::start`].
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    fn start_with(options: NatsServerBuilder) -> Result<NatsServer, HarnessError> {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let binary = NATS_SERVER.locate()?;
        let (mut dir, path) = crate::workdir::server_dir("nats")?;
        let store_dir = path.join("jetstream");
        // A name unique to this instance: the readiness check compares it with
        // the server's INFO, so a stranger that grabbed the port is not
        // mistaken for ours.
        let name = format!(
            "eye-testkit-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let mut process = ServerProcess::new(
            "nats-server",
            binary,
            Vec::new(),
            path.join("nats-server.log"),
            Vec::new(),
        );
        if options.config.is_some() && options.max_file_store.is_some() {
            return Err(HarnessError::InvalidOptions(
                "max_file_store applies to the harness's own configuration: \
                 with config_file, set it in the file's jetstream block",
            ));
        }
        let (config, own_file) = match options.config {
            Some(file) => (
                std::path::absolute(&file)
                    .map_err(|e| HarnessError::io(format!("locating {}", file.display()), e))?,
                false,
            ),
            None => {
                let file = path.join("harness.conf");
                let limit = options.max_file_store.as_deref();
                let limit = limit.unwrap_or(DEFAULT_MAX_FILE_STORE);
                std::fs::write(
                    &file,
                    format!("jetstream {{\n  max_file_store: {limit}\n}}\n"),
                )
                .map_err(|e| HarnessError::io(format!("writing {}", file.display()), e))?;
                (file, true)
            }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let [port, monitor_port] = free_ports::<2>()?;
            let mut envs = options.envs.clone();
            if !own_file {
                // A file with a jetstream block names its own store (a second
                // one from -sd is refused): deploy/nats/*.conf read it from
                // here. The name and ports are the flags' (which win over the
                // file), but a file may refer to them and a missing variable
                // stops the server.
                envs.extend([
                    (STORE_DIR_ENV.to_owned(), store_dir.display().to_string()),
                    (SERVER_NAME_ENV.to_owned(), name.clone()),
                    (PORT_ENV.to_owned(), port.to_string()),
                    (MONITOR_PORT_ENV.to_owned(), monitor_port.to_string()),
                ]);
            }
            process.set_envs(envs);
            process.set_args(args(
                &config,
                own_file,
                port,
                monitor_port,
                &name,
                &store_dir,
            ));
            process.clear_logs();
            let mut server = NatsServer {
                process,
                port,
                monitor_port,
                name: name.clone(),
                store_dir: store_dir.clone(),
                started_in: Duration::ZERO,
                _dir: dir,
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error) if error.is_address_in_use() && attempt < PORT_ATTEMPTS => {
                    tracing::debug!("nats-server lost a port race, retrying: {error}");
                    // Take the parts back for the next attempt.
                    let NatsServer {
                        process: p,
                        _dir: d,
                        ..
                    } = server;
                    (process, dir) = (p, d);
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn launch(&mut self) -> Result<(), HarnessError> {
        self.process.spawn()?;
        let (port, monitor_port) = (self.port, self.monitor_port);
        let expected_name = format!("\"server_name\":\"{}\"", self.name);
        self.started_in = self.process.wait_ready(START_TIMEOUT, || {
            let info = probe::nats_info(port)?;
            if !info.contains(&expected_name) {
                return Err(format!("port {port} is answered by another server: {info}"));
            }
            if !info.contains("\"jetstream\":true") {
                return Err(format!("JetStream not enabled yet: {info}"));
            }
            match probe::http(monitor_port, "GET", "/healthz?js-enabled-only=true", "")? {
                (200, _) => Ok(()),
                (status, body) => Err(format!("/healthz answered {status}: {body}")),
            }
        })?;
        Ok(())
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the monitoring endpoints (`/healthz`,
    /// `/jsz`, `/varz`, ...).
    pub fn monitoring_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// The server's name (`server_name`, unique to this instance and kept
    /// across restarts): JetStream names a stream's leader and replicas by it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until `/healthz` answers 200: on a cluster member, JetStream is
    /// in contact with the meta leader and every stream and consumer it hosts
    /// has caught up. Returns how long that took.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<Duration, HarnessError> {
        self.wait_monitor(timeout, |monitor_port| {
            match probe::http(monitor_port, "GET", "/healthz", "")? {
                (200, _) => Ok(()),
                (status, body) => Err(format!("/healthz answered {status}: {body}")),
            }
        })
    }

    /// Polls `check(monitoring port)` until it passes, the server exits, or
    /// `timeout` passes.
    pub(crate) fn wait_monitor(
        &mut self,
        timeout: Duration,
        check: impl Fn(u16) -> Result<(), String>,
    ) -> Result<Duration, HarnessError> {
        let monitor_port = self.monitor_port;
        self.process.wait_ready(timeout, || check(monitor_port))
    }

    /// The JetStream store directory (`-sd`), kept across restarts.
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The process id, until [`kill`](Self::kill) or [`stop`](Self::stop).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// How long the last start (or restart) took to be ready.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Connects a client.
    ///
    /// # Panics
    /// If the connection fails (the server is meant to be up).
    pub async fn connect(&self) -> async_nats::Client {
        match async_nats::connect(self.url()).await {
            Ok(client) => client,
            Err(error) => panic!(
                "connecting to {}: {error}\n{}",
                self.url(),
                self.process.log_tail()
            ),
        }
    }

    /// SIGKILL, like a crash: JetStream recovers from its store on restart.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.process.kill()
    }

    /// SIGTERM and wait for a clean shutdown (SIGKILL after 10 s).
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.process.stop(STOP_GRACE)
    }

    /// Starts the server again after [`kill`](Self::kill) or
    /// [`stop`](Self::stop): same port, same store, same URL. Returns how
    /// long it took to be ready.
    pub fn start_again(&mut self) -> Result<Duration, HarnessError> {
        self.launch()?;
        Ok(self.started_in)
    }

    /// The command line and the end of the server's log, for assertion
    /// messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// The variable a configuration file's `store_dir` is read from.
const STORE_DIR_ENV: &str = "EYE_NATS_STORE_DIR";
/// The variable a configuration file's `server_name` is read from.
const SERVER_NAME_ENV: &str = "EYE_NATS_SERVER_NAME";
/// The variable a configuration file's client `port` is read from.
const PORT_ENV: &str = "EYE_NATS_PORT";
/// The variable a configuration file's `http_port` is read from.
const MONITOR_PORT_ENV: &str = "EYE_NATS_MONITOR_PORT";

/// How to start a [`NatsServer`]; by default exactly as [`NatsServer::start`].
#[derive(Debug, Default, Clone)]
pub struct NatsServerBuilder {
    config: Option<PathBuf>,
    envs: Vec<(String, String)>,
    max_file_store: Option<String>,
}

impl NatsServerBuilder {
    /// Starts the server with configuration file `path` (`--config`). The
    /// harness's own flags still choose the ports, the name and the loopback
    /// address, overriding the file; everything else (users, permissions,
    /// `include`s relative to the file) comes from it. The JetStream store
    /// is the file's `store_dir`: the harness sets `EYE_NATS_STORE_DIR` to
    /// its own temporary store, which deploy/nats/*.conf use, and
    /// `EYE_NATS_SERVER_NAME`, `EYE_NATS_PORT` and `EYE_NATS_MONITOR_PORT` to
    /// the name and ports it chose.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// JetStream's storage limit, in nats-server's notation (`64MB`, `1TB`;
    /// default 1TB), for tests of what happens when it is too small. Not
    /// with [`config_file`](Self::config_file), whose `jetstream` block
    /// decides: starting then fails with [`HarnessError::InvalidOptions`].
    pub fn max_file_store(mut self, limit: impl Into<String>) -> Self {
        self.max_file_store = Some(limit.into());
        self
    }

    /// Sets environment variable `name` for the server (a configuration file's
    /// `$NAME` references resolve from its environment).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((name.into(), value.into()));
        self
    }

    /// Starts the server and waits until it is ready (see [`NatsServer::start`]).
    pub fn start(self) -> Result<NatsServer, HarnessError> {
        NatsServer::start_with(self)
    }
}

/// The server's flags: `config` is the harness's own file (`own_file`: no
/// store directory, so `-sd` names it) or the caller's.
fn args(
    config: &Path,
    own_file: bool,
    port: u16,
    monitor_port: u16,
    name: &str,
    store_dir: &Path,
) -> Vec<String> {
    let mut args = vec!["--config".to_owned(), config.display().to_string()];
    args.extend([
        "-js".to_owned(),
        "-a".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
        // The monitoring listener binds the `-a` address too.
        "-m".to_owned(),
        monitor_port.to_string(),
    ]);
    // A caller's file names its store_dir (from EYE_NATS_STORE_DIR): a
    // second one from -sd is refused.
    if own_file {
        args.extend(["-sd".to_owned(), store_dir.display().to_string()]);
    }
    args.extend(["-n".to_owned(), name.to_owned()]);
    args
}
