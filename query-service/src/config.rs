//! The query service's configuration: flags with environment-variable fallbacks and
//! documented defaults (`eye-query --help` lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use eye_server_kit::args::{ClickHouseArgs, LogArgs};
use eye_server_kit::service::ServiceConfig;

/// Default of `--default-limit`.
pub const DEFAULT_LIMIT: u64 = 100;
/// Default of `--max-limit`.
pub const DEFAULT_MAX_LIMIT: u64 = 10_000;
/// Default of `--max-export-rows`.
pub const DEFAULT_MAX_EXPORT_ROWS: u64 = 10_000_000;
/// Default of `--max-concurrent-queries`.
pub const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 32;

/// Everything `eye-query` can be told.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address of the HTTP query API and of /healthz, /readyz, /metrics.
    #[arg(long, env = "EYE_QUERY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Seconds requests in flight may take to finish after a shutdown signal.
    #[arg(long, env = "EYE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// TOML file of the registered clients; their read tokens open the API.
    #[arg(long, env = "EYE_CLIENTS_FILE", default_value = "deploy/clients.toml")]
    pub clients_file: PathBuf,
    /// Longest a JSON answer's query may run (e.g. `10s`), enforced here and
    /// sent to ClickHouse as `max_execution_time`; slower is 504.
    #[arg(long, env = "EYE_QUERY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub query_timeout: Duration,
    /// Longest an NDJSON export may run in total (e.g. `10m`); ClickHouse's
    /// `max_execution_time` for it. Between two chunks, `--query-timeout` applies.
    #[arg(long, env = "EYE_EXPORT_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub export_timeout: Duration,
    /// Rows of a JSON page when the request gives no `limit`.
    #[arg(long, env = "EYE_QUERY_DEFAULT_LIMIT", default_value_t = DEFAULT_LIMIT, value_name = "N")]
    pub default_limit: u64,
    /// Largest `limit` of a JSON page.
    #[arg(long, env = "EYE_QUERY_MAX_LIMIT", default_value_t = DEFAULT_MAX_LIMIT, value_name = "N")]
    pub max_limit: u64,
    /// Most rows of one NDJSON export (its default and largest `limit`).
    #[arg(long, env = "EYE_QUERY_MAX_EXPORT_ROWS", default_value_t = DEFAULT_MAX_EXPORT_ROWS, value_name = "N")]
    pub max_export_rows: u64,
    /// Most queries running at once; more are answered 503 with Retry-After.
    #[arg(long, env = "EYE_QUERY_MAX_CONCURRENT", default_value_t = DEFAULT_MAX_CONCURRENT_QUERIES, value_name = "N")]
    pub max_concurrent_queries: usize,
    /// Connection to ClickHouse (in the stacks: the read-only user `eye_reader`).
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// A setting that cannot work, naming the option.
#[derive(Debug, thiserror::Error)]
#[error("{option}: {problem}")]
pub struct ConfigError {
    /// The flag and environment variable.
    pub option: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

impl Config {
    /// Checks the settings that clap cannot check alone.
    pub fn check(&self) -> Result<(), ConfigError> {
        let fail = |option, problem: &str| {
            Err(ConfigError {
                option,
                problem: problem.to_owned(),
            })
        };
        if self.query_timeout < Duration::from_secs(1) {
            return fail("--query-timeout / EYE_QUERY_TIMEOUT", "must be at least 1s");
        }
        if self.export_timeout < self.query_timeout {
            return fail(
                "--export-timeout / EYE_EXPORT_TIMEOUT",
                "must be at least --query-timeout",
            );
        }
        if self.max_limit == 0 {
            return fail("--max-limit / EYE_QUERY_MAX_LIMIT", "must be at least 1");
        }
        if self.default_limit == 0 || self.default_limit > self.max_limit {
            return fail(
                "--default-limit / EYE_QUERY_DEFAULT_LIMIT",
                "must be between 1 and --max-limit",
            );
        }
        if self.max_export_rows < self.max_limit {
            return fail(
                "--max-export-rows / EYE_QUERY_MAX_EXPORT_ROWS",
                "must be at least --max-limit",
            );
        }
        if self.max_concurrent_queries == 0 {
            return fail(
                "--max-concurrent-queries / EYE_QUERY_MAX_CONCURRENT",
                "must be at least 1",
            );
        }
        Ok(())
    }
}

impl ServiceConfig for Config {
    const LISTEN_OPTION: &'static str = "--listen / EYE_QUERY_LISTEN";
    fn listen(&self) -> SocketAddr {
        self.listen
    }
    fn log(&self) -> &LogArgs {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        eye_server_kit::service::command::<Config>(crate::BINARY, crate::ABOUT).debug_assert();
    }

    #[test]
    fn defaults_pass_the_checks_and_bad_values_name_their_option() {
        let config: Config = eye_testkit::service::parse_config(&[]);
        assert!(config.check().is_ok());
        assert_eq!(config.max_limit, 10_000);
        assert_eq!(config.default_limit, 100);
        let bad: Config = eye_testkit::service::parse_config(&["--default-limit", "20000"]);
        let error = bad.check().expect_err("refused").to_string();
        assert!(error.contains("--default-limit"), "{error}");
    }
}
