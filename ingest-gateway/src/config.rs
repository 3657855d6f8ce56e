//! The gateway's configuration: flags with environment-variable fallbacks and
//! documented defaults (`eye-gateway --help` lists them all).

use std::net::SocketAddr;
use std::path::PathBuf;

use eye_server_kit::args::{LogArgs, NatsArgs};
use eye_server_kit::service::ServiceConfig;

/// Everything `eye-gateway` can be told.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address of the HTTP ingest API and of /healthz, /readyz, /metrics.
    #[arg(long, env = "EYE_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the JSON Schemas, one file per event category.
    #[arg(long, env = "EYE_SCHEMAS_DIR", default_value = "schemas")]
    pub schemas_dir: PathBuf,
    /// Seconds requests in flight may take to finish after a shutdown signal.
    #[arg(long, env = "EYE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Connection to NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

impl ServiceConfig for Config {
    const LISTEN_OPTION: &'static str = "--listen / EYE_GATEWAY_LISTEN";
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
