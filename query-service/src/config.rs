//! The query service's configuration: flags with environment-variable fallbacks and
//! documented defaults (`eye-query --help` lists them all).

use std::net::SocketAddr;

use eye_server_kit::args::{ClickHouseArgs, LogArgs};
use eye_server_kit::service::ServiceConfig;

/// Everything `eye-query` can be told.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address of the HTTP query API and of /healthz, /readyz, /metrics.
    #[arg(long, env = "EYE_QUERY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Seconds requests in flight may take to finish after a shutdown signal.
    #[arg(long, env = "EYE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Connection to ClickHouse.
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
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
    #[test]
    fn command_line_is_well_formed() {
        eye_server_kit::service::command::<super::Config>(crate::BINARY, crate::ABOUT)
            .debug_assert();
    }
}
