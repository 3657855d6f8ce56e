//! The query service (`eye-query`): answers "this session's events in order", "this
//! category", "this time range" and "what was rejected and why" from ClickHouse.
//!
//! # Map of the modules
//!
//! - [`config`]: flags and environment variables.
//! - [`auth`]: the read-token extractor (client registry, constant-time compare).
//! - [`params`]: query string / JSON body to typed, bounded values.
//! - [`cursor`]: opaque keyset cursors bound to their filters.
//! - [`sql`]: the statements, from fixed fragments, every value bound.
//! - [`rows`]: the rows read and how each is written as JSON.
//! - [`answer`]: running a read, JSON pages, timeouts, concurrency.
//! - [`ndjson`]: streamed NDJSON exports.
//! - [`routes`]: the HTTP API.
//! - [`stats`]: counts per hour for charts.
//! - [`error`]: failures as problem+json.
//! - [`metrics`]: metric names and handles.
//! - [`ui`]: the session explorer page under `/ui` (files embedded in the binary).
//! - [`run`]: the service itself, used by the binary and by tests.

pub mod answer;
pub mod auth;
pub mod config;
pub mod cursor;
pub mod error;
pub mod metrics;
pub mod ndjson;
pub mod params;
pub mod routes;
pub mod rows;
pub mod sql;
pub mod stats;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use eye_server_kit::clients::ClientsError;
use eye_server_kit::ops::{self, ClickHouseReady, Ops};
use eye_server_kit::reload::SharedClients;
use eye_server_kit::serve::{serve, ServeError};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::answer::Reader;
use crate::config::ConfigError;
use crate::metrics::Metrics;
use crate::params::Limits;
use crate::routes::AppState;

/// The binary's name.
pub const BINARY: &str = "eye-query";
/// What `eye-query --help` says the binary is.
pub const ABOUT: &str =
    "The Eye's query service: reads sessions, events and rejects from ClickHouse.";

/// Why the query service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The client registry cannot be loaded.
    #[error(transparent)]
    Clients(#[from] ClientsError),
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
    config.check()?;
    let clients = SharedClients::load(&config.clients_file)?;
    let reloader = clients.reload_on_sighup(shutdown.clone());
    let clickhouse = eye_server_kit::clickhouse::client(&config.clickhouse.config());
    let mut registry = ops::registry("eye_query");
    let metrics = Metrics::register(&mut registry);
    let ops = Ops::new(
        registry,
        vec![Box::new(ClickHouseReady(clickhouse.clone()))],
    );
    let reader = Reader {
        clickhouse,
        query_timeout: config.query_timeout,
        export_timeout: config.export_timeout,
        permits: Arc::new(Semaphore::new(config.max_concurrent_queries)),
        metrics,
    };
    let state = AppState::new(
        clients,
        reader,
        Limits {
            default: config.default_limit,
            max: config.max_limit,
        },
        Limits {
            default: config.max_export_rows,
            max: config.max_export_rows,
        },
    );
    let router = routes::router(state)
        .merge(ops.router())
        .merge(ui::router())
        .fallback(routes::not_found);
    serve(
        listener,
        router,
        shutdown,
        Duration::from_secs(config.shutdown_grace_secs),
    )
    .await?;
    reloader.abort();
    Ok(())
}
