//! The consumer (`eye-consumer`): pulls events from NATS JetStream, validates each one
//! against its category schema, and bulk-inserts them into ClickHouse before acking.
//!
//! - [`config`]: flags and environment variables.
//! - [`run`]: the service itself, used by the binary and by tests.

pub mod config;

use std::time::Duration;

use eye_server_kit::args::NatsConnectError;
use eye_server_kit::ops::{self, ClickHouseReady, NatsReady, Ops};
use eye_server_kit::serve::{serve, ServeError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The binary's name.
pub const BINARY: &str = "eye-consumer";
/// What `eye-consumer --help` says the binary is.
pub const ABOUT: &str = "The Eye's consumer: validates events from NATS JetStream and stores them in ClickHouse.";

/// Why the consumer could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The NATS options are unusable.
    #[error(transparent)]
    Nats(#[from] NatsConnectError),
    /// The HTTP server of the operations endpoints failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the consumer, with its operations endpoints on `listener`, until `shutdown`
/// is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let nats = config.nats.connect("eye-consumer").await?;
    let clickhouse = eye_server_kit::clickhouse::client(&config.clickhouse.config());
    let ops = Ops::new(
        ops::registry("eye_consumer"),
        vec![Box::new(NatsReady(nats)), Box::new(ClickHouseReady(clickhouse))],
    );
    serve(listener, ops.router(), shutdown, Duration::from_secs(config.shutdown_grace_secs)).await?;
    Ok(())
}
