//! A throwaway `clickhouse-server`, configured from the templates in
//! `deploy/clickhouse/` (the same files the local stack uses).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eye_server_kit::clickhouse::ClickHouseConfig;
use tempfile::TempDir;

use crate::binary::CLICKHOUSE_SERVER;
use crate::ports::free_ports;
use crate::probe;
use crate::process::ServerProcess;
use crate::HarnessError;

const CONFIG_TEMPLATE: &str = include_str!("../../deploy/clickhouse/config.xml");
const USERS_TEMPLATE: &str = include_str!("../../deploy/clickhouse/users.xml");

/// Deadline for a start (or restart) to be ready; typical is about 0.3 s.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Starts on fresh ports after losing a port race.
const PORT_ATTEMPTS: usize = 5;
/// How long [`ClickHouseServer::stop`] waits for a clean exit before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A `clickhouse-server` on 127.0.0.1 with its data, configuration and logs in
/// a temporary directory. Killed, and its directory removed, when dropped.
///
/// Users (from `deploy/clickhouse/users.xml`): `default` without password and
/// with full access, and the read-only [`READER_USER`](Self::READER_USER)
/// with password [`READER_PASSWORD`](Self::READER_PASSWORD).
///
/// Tests sharing a server isolate themselves with
/// [`create_database`](Self::create_database).
#[derive(Debug)]
pub struct ClickHouseServer {
    process: ServerProcess,
    http_port: u16,
    tcp_port: u16,
    data_dir: PathBuf,
    started_in: Duration,
    // Last: removed after the process is killed (fields drop in order).
    _dir: TempDir,
}

impl ClickHouseServer {
    /// The query service's read-only user.
    pub const READER_USER: &'static str = "eye_reader";
    /// Its password on test servers.
    pub const READER_PASSWORD: &'static str = "eye_reader_test_password";

    /// Starts a server on free loopback ports and waits until `GET /ping`
    /// answers `Ok.` and a query confirms the answering server is this one.
    ///
    /// Blocks the calling thread (typically for about 0.3 s).
    pub fn start() -> Result<ClickHouseServer, HarnessError> {
        let binary = CLICKHOUSE_SERVER.locate()?;
        let (mut dir, path) = crate::workdir::server_dir("clickhouse")?;
        let data_dir = path.join("data");
        let log_dir = path.join("log");
        for subdir in [&data_dir, &log_dir] {
            fs::create_dir_all(subdir)
                .map_err(|e| HarnessError::io(format!("creating {}", subdir.display()), e))?;
        }
        let config_file = path.join("config.xml");
        write_file(
            &path.join("users.xml"),
            &render(
                USERS_TEMPLATE,
                &[
                    ("DEFAULT_USER_NETWORK", "127.0.0.1"),
                    ("READER_PASSWORD", Self::READER_PASSWORD),
                ],
            ),
        )?;
        let mut process = ServerProcess::new(
            "clickhouse-server",
            binary,
            vec![format!("--config-file={}", config_file.display())],
            path.join("clickhouse-server.console.log"),
            vec![log_dir.join("clickhouse-server.err.log")],
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let [http_port, tcp_port] = free_ports::<2>()?;
            let config = render(
                CONFIG_TEMPLATE,
                &[
                    ("LISTEN_HOST", "127.0.0.1"),
                    ("HTTP_PORT", &http_port.to_string()),
                    ("TCP_PORT", &tcp_port.to_string()),
                    ("DATA_DIR", &data_dir.display().to_string()),
                    ("LOG_DIR", &log_dir.display().to_string()),
                ],
            );
            write_file(&config_file, &config)?;
            process.clear_logs();
            let mut server = ClickHouseServer {
                process,
                http_port,
                tcp_port,
                data_dir: data_dir.clone(),
                started_in: Duration::ZERO,
                _dir: dir,
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(error) if error.is_address_in_use() && attempt < PORT_ATTEMPTS => {
                    tracing::debug!("clickhouse-server lost a port race, retrying: {error}");
                    let ClickHouseServer {
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
        let port = self.http_port;
        let data_dir = self.data_dir.display().to_string();
        self.started_in = self.process.wait_ready(START_TIMEOUT, || {
            match probe::http(port, "GET", "/ping", "")? {
                (200, body) if body.trim() == "Ok." => {}
                (status, body) => return Err(format!("/ping answered {status}: {body:?}")),
            }
            // Another server may own the port (we lost a race and ours is
            // about to exit): only ours keeps its data in our directory.
            let query = "SELECT data_path FROM system.databases WHERE name = 'system'";
            match probe::http(port, "POST", "/", query)? {
                (200, path) if path.trim().starts_with(&data_dir) => Ok(()),
                (200, path) => Err(format!(
                    "port {port} is answered by another server (data in {})",
                    path.trim()
                )),
                (status, body) => Err(format!("{query} answered {status}: {body}")),
            }
        })?;
        Ok(())
    }

    /// `http://127.0.0.1:PORT`, the HTTP interface.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The native protocol port (for `clickhouse-client --port`).
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// The server's data directory, kept across restarts.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id, until [`kill`](Self::kill) or [`stop`](Self::stop).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// How long the last start (or restart) took to be ready.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Client settings for user `default` in `database`.
    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.http_url(),
            database: database.to_owned(),
            user: "default".to_owned(),
            password: String::new(),
        }
    }

    /// Client settings for the read-only user in `database`.
    pub fn reader_config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            user: Self::READER_USER.to_owned(),
            password: Self::READER_PASSWORD.to_owned(),
            ..self.config(database)
        }
    }

    /// A client (user `default`) built like the services build theirs, by
    /// `eye_server_kit::clickhouse::client`.
    pub fn client(&self, database: &str) -> clickhouse::Client {
        eye_server_kit::clickhouse::client(&self.config(database))
    }

    /// A client for the read-only user.
    pub fn reader_client(&self, database: &str) -> clickhouse::Client {
        eye_server_kit::clickhouse::client(&self.reader_config(database))
    }

    /// Creates a database named by [`unique_name`](crate::unique_name)`(prefix)`
    /// and returns the name.
    ///
    /// # Panics
    /// If `prefix` is not a valid identifier start, or the server refuses.
    pub async fn create_database(&self, prefix: &str) -> String {
        let name = crate::unique_name(prefix);
        if let Err(error) = self
            .client("default")
            .query(&format!("CREATE DATABASE {name}"))
            .execute()
            .await
        {
            panic!(
                "CREATE DATABASE {name} on {}: {error}\n{}",
                self.http_url(),
                self.process.log_tail()
            );
        }
        name
    }

    /// SIGKILL, like a crash.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        self.process.kill()
    }

    /// SIGTERM and wait for a clean shutdown (SIGKILL after 15 s).
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.process.stop(STOP_GRACE)
    }

    /// Starts the server again after [`kill`](Self::kill) or
    /// [`stop`](Self::stop): same ports, same data. Returns how long it took
    /// to be ready.
    pub fn start_again(&mut self) -> Result<Duration, HarnessError> {
        self.launch()?;
        Ok(self.started_in)
    }

    /// The command line and the end of the server's logs, for assertion
    /// messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), HarnessError> {
    fs::write(path, contents)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

/// Replaces each `@NAME@` of `values` in `template`.
///
/// # Panics
/// If a placeholder is left over: the template gained one the harness does
/// not know (a bug to fix here, not a reason to start a half-configured
/// server).
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("@{name}@"), value);
    }
    if let Some(left) = leftover_placeholder(&text) {
        panic!(
            "deploy/clickhouse template has a placeholder the test harness does not fill: {left}"
        );
    }
    text
}

fn leftover_placeholder(text: &str) -> Option<&str> {
    text.match_indices('@').find_map(|(start, _)| {
        let rest = &text[start + 1..];
        let end = rest.find('@')?;
        let name = &rest[..end];
        let is_placeholder =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
        is_placeholder.then(|| &text[start..start + end + 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_placeholders_and_finds_leftovers() {
        assert_eq!(
            render("<p>@HTTP_PORT@</p>", &[("HTTP_PORT", "8123")]),
            "<p>8123</p>"
        );
        assert_eq!(leftover_placeholder("a@b.c @TCP_PORT@"), Some("@TCP_PORT@"));
        assert_eq!(leftover_placeholder("user@example.com"), None);
    }
}
