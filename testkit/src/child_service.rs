//! One of our own binaries (`eye-gateway`, `eye-consumer`, `eye-query`) run as a
//! separate process, the way users run it, for fault tests that must kill it
//! (SIGKILL), stop it (SIGTERM) and start it again on the same port.
//!
//! Unlike [`crate::service::RunningService`] (the service's `run` inside the
//! test process), a child process can crash for real: its connections drop,
//! its in-flight work is lost, and JetStream redelivers what it had not acked.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use crate::ports::free_ports;
use crate::probe;
use crate::process::ServerProcess;
use crate::HarnessError;

/// Deadline for a start (or restart) to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts on a fresh port after losing a port race.
const PORT_ATTEMPTS: usize = 5;

/// A service binary running as a child of the test process on a fixed
/// loopback port, with its console output in a temporary log file. Dies with
/// the test process (like the servers) and is killed when dropped.
#[derive(Debug)]
pub struct ChildService {
    process: ServerProcess,
    port: u16,
    started_in: Duration,
    // Last: removed after the process is killed (fields drop in order).
    _dir: TempDir,
}

impl ChildService {
    /// Starts `program` with the arguments `args(port)` gives for a free
    /// loopback port (the service must listen on `127.0.0.1:port`), and waits
    /// until its `GET /healthz` answers 200.
    ///
    /// `name` labels errors and logs (e.g. `eye-consumer`).
    pub fn start(
        name: &'static str,
        program: impl Into<PathBuf>,
        args: impl Fn(u16) -> Vec<String>,
    ) -> Result<ChildService, HarnessError> {
        let program = program.into();
        let (mut dir, path) = crate::workdir::server_dir("service")?;
        let mut process = ServerProcess::new(
            name,
            program,
            Vec::new(),
            path.join("console.log"),
            Vec::new(),
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let [port] = free_ports::<1>()?;
            process.set_args(args(port));
            process.clear_logs();
            let mut service = ChildService {
                process,
                port,
                started_in: Duration::ZERO,
                _dir: dir,
            };
            match service.launch() {
                Ok(()) => return Ok(service),
                Err(error) if error.is_address_in_use() && attempt < PORT_ATTEMPTS => {
                    let ChildService {
                        process: p,
                        _dir: d,
                        ..
                    } = service;
                    (process, dir) = (p, d);
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn launch(&mut self) -> Result<(), HarnessError> {
        self.process.spawn()?;
        let port = self.port;
        self.started_in = self.process.wait_ready(START_TIMEOUT, || {
            match probe::http(port, "GET", "/healthz", "")? {
                (200, _) => Ok(()),
                (status, body) => Err(format!("/healthz answered {status}: {body}")),
            }
        })?;
        Ok(())
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The port it listens on, kept across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, until [`kill`](Self::kill) or [`stop`](Self::stop).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.running_pid().is_some()
    }

    /// How long the last start (or restart) took to answer `/healthz`.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// SIGKILL (a crash: nothing is flushed, nothing acked) and reap.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.process.kill()
    }

    /// SIGTERM, then wait up to `grace` for the service to finish its work and
    /// exit, then SIGKILL. Blocks the calling thread.
    pub fn stop(&mut self, grace: Duration) -> Result<(), HarnessError> {
        self.process.stop(grace)
    }

    /// Starts it again after [`kill`](Self::kill) or [`stop`](Self::stop), on
    /// the same port with the same arguments; returns how long it took to
    /// answer `/healthz`.
    pub fn start_again(&mut self) -> Result<Duration, HarnessError> {
        self.launch()?;
        Ok(self.started_in)
    }

    /// The command line and the end of its console log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}
