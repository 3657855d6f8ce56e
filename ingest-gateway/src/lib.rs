//! The ingest gateway (`eye-gateway`): authenticates senders, checks each event against
//! the wire contract and its category schema, and publishes accepted events to NATS
//! JetStream before answering.
//!
//! # Map of the modules
//!
//! - [`config`]: flags and environment variables, with their defaults.
//! - [`routes`]: the HTTP API (`/v1/events`, `/v1/validate`, `/v1/schemas`) and its state.
//! - [`auth`]: the [`auth::Sender`] extractor (signatures and write keys from the client registry).
//! - [`cors`]: CORS preflights and `Access-Control-Allow-Origin` for browser senders.
//! - [`body`]: content types, gzip, size limits, splitting a body into events.
//! - [`check`]: one verdict per event, by the contract's validator, plus reject records.
//! - [`publish`]: pipelined JetStream publishing of events; rejects on the side.
//! - [`response`]: the per-event answer and its HTTP status.
//! - [`problem`]: whole-request failures as problem+json.
//! - [`streams`]: setting the streams up in the background (again when lost); readiness.
//! - [`metrics`]: metric names and the metrics.
//! - [`run`]: the service itself, used by the binary and by tests.

pub mod auth;
pub mod body;
pub mod check;
pub mod config;
pub mod cors;
pub mod metrics;
pub mod problem;
pub mod publish;
pub mod response;
pub mod routes;
pub mod streams;

use std::sync::Arc;
use std::time::Duration;

use eye_server_kit::args::NatsConnectError;
use eye_server_kit::clients::ClientsError;
use eye_server_kit::ops::{self, NatsReady, Ops};
use eye_server_kit::reload::{self, SharedClients};
use eye_server_kit::schemas::SharedSchemas;
use eye_server_kit::serve::{serve_with, ServeError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::body::BodyLimits;
use crate::metrics::Metrics;
use crate::publish::{Publisher, PublisherConfig};
use crate::routes::{AppState, StateParts};
use crate::streams::{Streams, StreamsReady};

/// The binary's name.
pub const BINARY: &str = "eye-gateway";
/// What `eye-gateway --help` says the binary is.
pub const ABOUT: &str =
    "The Eye's ingest gateway: takes events over HTTP and makes them durable in NATS JetStream.";

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A configuration value cannot work.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The schema directory could not be loaded.
    #[error("cannot load the event schemas: {0}")]
    Schemas(#[from] eye_contract::RegistryError),
    /// The client registry could not be loaded.
    #[error(transparent)]
    Clients(#[from] ClientsError),
    /// The NATS options are unusable.
    #[error(transparent)]
    Nats(#[from] NatsConnectError),
    /// The HTTP server failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the gateway on `listener` until `shutdown` is cancelled: stops accepting,
/// lets requests in flight finish, waits for pending reject publishes, then
/// flushes NATS.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), GatewayError> {
    config.check()?;
    // Bad schemas or clients stop the start-up here, with the file named, rather
    // than at the first request.
    let schemas = SharedSchemas::load(
        &config.schemas_dir,
        config.time_rules(),
        config.event_limits(),
    )?;
    let clients = SharedClients::load(&config.clients_file)?;
    // SIGHUP: the client registry, then the schemas.
    let reloader = reload::on_sighup(
        vec![Arc::clone(&clients) as _, Arc::clone(&schemas) as _],
        shutdown.clone(),
    );
    let nats = config.nats.connect(BINARY).await?;

    let mut registry = ops::registry("eye_gateway");
    let metrics = Metrics::register(&mut registry);
    let streams = Streams::new();
    let publisher = Arc::new(Publisher::new(PublisherConfig {
        nats: nats.clone(),
        streams: Arc::clone(&streams),
        max_inflight: config.publish.max_inflight_publishes,
        timeout: config.publish.publish_timeout,
        metrics: metrics.clone(),
    }));
    let keeper = tokio::spawn(Arc::clone(&streams).keep(
        publisher.jetstream().clone(),
        config.stream.clone(),
        shutdown.clone(),
    ));

    let ops = Ops::new(
        registry,
        vec![
            Box::new(NatsReady(nats.clone())),
            Box::new(StreamsReady(streams)),
        ],
    );
    let state = AppState::new(StateParts {
        schemas,
        clients,
        signature_window_secs: config.security.signature_window.as_secs(),
        publisher: Arc::clone(&publisher),
        limits: BodyLimits {
            max_body_bytes: config.limits.max_body_bytes,
            max_events: config.limits.max_events_per_request,
            read_timeout: config.limits.body_read_timeout,
        },
        raw_cap: config.publish.reject_raw_cap,
        metrics,
    });
    let router = routes::router(state).merge(ops.router());
    let served = serve_with(
        listener,
        router,
        shutdown,
        Duration::from_secs(config.shutdown_grace_secs),
        config.http_limits(),
    )
    .await;
    keeper.abort();
    reloader.abort();
    publisher.drain().await;
    // Messages still buffered in the client go out before we exit, unless NATS is
    // unreachable: then there is nothing to wait for.
    match tokio::time::timeout(Duration::from_secs(2), nats.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not flush NATS on shutdown"),
        Err(_) => tracing::warn!("NATS flush on shutdown timed out"),
    }
    served?;
    Ok(())
}
