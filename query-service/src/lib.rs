//! The query service (`eye-query`): answers "this session's events in order", "this
//! category", "this time range" and "what was rejected and why" from ClickHouse.
//!
//! - [`config`]: flags and environment variables.
//! - [`run`]: the service itself, used by the binary and by tests.

pub mod config;

use std::time::Duration;

use eye_server_kit::ops::{self, ClickHouseReady, Ops};
use eye_server_kit::serve::{serve, ServeError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The binary's name.
pub const BINARY: &str = "eye-query";
/// What `eye-query --help` says the binary is.
pub const ABOUT: &str =
    "The Eye's query service: reads sessions, events and rejects from ClickHouse.";

/// Why the query service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The HTTP server failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the query service on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), QueryError> {
    let clickhouse = eye_server_kit::clickhouse::client(&config.clickhouse.config());
    let ops = Ops::new(
        ops::registry("eye_query"),
        vec![Box::new(ClickHouseReady(clickhouse))],
    );
    serve(
        listener,
        ops.router(),
        shutdown,
        Duration::from_secs(config.shutdown_grace_secs),
    )
    .await?;
    Ok(())
}
