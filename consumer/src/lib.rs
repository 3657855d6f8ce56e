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
pub const ABOUT: &str =
    "The Eye's consumer: validates events from NATS JetStream and stores them in ClickHouse.";

/// Why the consumer could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The schema directory could not be loaded.
    #[error("cannot load the event schemas: {0}")]
    Schemas(#[from] eye_contract::RegistryError),
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
    // Bad schemas stop the start-up here, with the file named, rather than at the first event.
    let _schemas = load_schemas(&config.schemas_dir)?;
    let nats = config.nats.connect("eye-consumer").await?;
    let clickhouse = eye_server_kit::clickhouse::client(&config.clickhouse.config());
    let ops = Ops::new(
        ops::registry("eye_consumer"),
        vec![
            Box::new(NatsReady(nats)),
            Box::new(ClickHouseReady(clickhouse)),
        ],
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

fn load_schemas(
    dir: &std::path::Path,
) -> Result<std::sync::Arc<eye_contract::SchemaRegistry>, ConsumerError> {
    let schemas = eye_contract::SchemaRegistry::load_dir(dir)?;
    tracing::info!(dir = %dir.display(), categories = ?schemas.categories().collect::<Vec<_>>(), "loaded event schemas");
    Ok(std::sync::Arc::new(schemas))
}
