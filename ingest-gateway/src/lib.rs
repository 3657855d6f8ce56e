//! The ingest gateway (`eye-gateway`): authenticates senders, checks each event against
//! the wire contract and its category schema, and publishes accepted events to NATS
//! JetStream before answering.
//!
//! - [`config`]: flags and environment variables.
//! - [`run`]: the service itself, used by the binary and by tests.

pub mod config;

use std::time::Duration;

use eye_server_kit::args::NatsConnectError;
use eye_server_kit::ops::{self, NatsReady, Ops};
use eye_server_kit::serve::{serve, ServeError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The binary's name.
pub const BINARY: &str = "eye-gateway";
/// What `eye-gateway --help` says the binary is.
pub const ABOUT: &str =
    "The Eye's ingest gateway: takes events over HTTP and makes them durable in NATS JetStream.";

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The schema directory could not be loaded.
    #[error("cannot load the event schemas: {0}")]
    Schemas(#[from] eye_contract::RegistryError),
    /// The NATS options are unusable.
    #[error(transparent)]
    Nats(#[from] NatsConnectError),
    /// The HTTP server failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the gateway on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    // Bad schemas stop the start-up here, with the file named, rather than at the first event.
    let _schemas = load_schemas(&config.schemas_dir)?;
    let nats = config.nats.connect("eye-gateway").await?;
    let ops = Ops::new(
        ops::registry("eye_gateway"),
        vec![Box::new(NatsReady(nats.clone()))],
    );
    let router = ops.router();
    serve(
        listener,
        router,
        shutdown,
        Duration::from_secs(config.shutdown_grace_secs),
    )
    .await?;
    // Messages still buffered in the client go out before we exit, unless NATS is
    // unreachable: then there is nothing to wait for.
    match tokio::time::timeout(Duration::from_secs(2), nats.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not flush NATS on shutdown"),
        Err(_) => tracing::warn!("NATS flush on shutdown timed out"),
    }
    Ok(())
}

fn load_schemas(
    dir: &std::path::Path,
) -> Result<std::sync::Arc<eye_contract::SchemaRegistry>, GatewayError> {
    let schemas = eye_contract::SchemaRegistry::load_dir(dir)?;
    tracing::info!(dir = %dir.display(), categories = ?schemas.categories().collect::<Vec<_>>(), "loaded event schemas");
    Ok(std::sync::Arc::new(schemas))
}
