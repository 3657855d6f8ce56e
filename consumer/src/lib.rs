//! The consumer (`eye-consumer`): pulls events from NATS JetStream, validates each one
//! against its category schema, and bulk-inserts them into ClickHouse before acking.
//!
//! # Map of the modules
//!
//! - [`config`]: flags and environment variables.
//! - [`migrations`]: the versioned schema files of `migrations/`, applied at start-up.
//! - [`sql`]: every other statement the consumer sends, from `consumer/sql/`.
//! - [`rows`]: the rows of `events` and `event_errors`.
//! - [`decode`]: one message in, a decision out (store, reject, dead letter).
//! - [`store`]: bulk inserts, and telling "ClickHouse down" from "row refused".
//! - [`deadletter`]: parking a message on the dead-letter subject.
//! - [`puller`]: batches from the durable pull consumer over one long-lived inbox.
//! - [`pipeline`]: the fetch → decide → insert → ack loop, retries and shutdown.
//! - [`monitor`]: consumer lag and dead-letter depth, polled from JetStream.
//! - [`trim`]: purging acknowledged events from a stream that runs full.
//! - [`status`]: shared state behind `/status` and the pipeline's readiness.
//! - [`metrics`]: metric names and handles.
//! - [`replay`]: `eye-consumer replay`, re-validating stored rejects after a schema fix.
//! - [`run`]: the service itself, used by the binary and by tests.

pub mod config;
pub mod deadletter;
pub mod decode;
pub mod metrics;
pub mod migrations;
pub mod monitor;
pub mod pipeline;
pub mod puller;
pub mod replay;
pub mod rows;
pub mod sql;
pub mod status;
pub mod store;
pub mod trim;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::PullConsumer, stream::Stream};
use eye_contract::{Validator, EVENTS_STREAM};
use eye_server_kit::args::NatsConnectError;
use eye_server_kit::jetstream::{create_or_update_streams, DEADLETTER_STREAM, REJECTS_STREAM};
use eye_server_kit::ops::{self, ClickHouseReady, NatsReady, Ops};
use eye_server_kit::reload;
use eye_server_kit::schemas::SharedSchemas;
use eye_server_kit::serve::{serve, ServeError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use replay::Tool;

use crate::config::ConfigError;
use crate::metrics::Metrics;
use crate::migrations::MigrationError;
use crate::pipeline::{Lane, Pipeline, Settings};
use crate::status::{PipelineReady, Status};
use crate::store::Store;

/// The binary's name.
pub const BINARY: &str = "eye-consumer";
/// What `eye-consumer --help` says the binary is.
pub const ABOUT: &str =
    "The Eye's consumer: validates events from NATS JetStream and stores them in ClickHouse.";

/// Longest pause between two start-up attempts (migrations, streams).
const STARTUP_RETRY_MAX: Duration = Duration::from_secs(5);

/// JetStream's own delivery limit on the durable consumers: none. `--max-deliver`
/// is enforced here instead, and only against deliveries ClickHouse refused (see
/// `Pipeline::refused`). A message past JetStream's limit is never delivered again
/// but stays in the stream, neither stored nor dead-lettered, and deliveries add
/// up without any refusal: every crash of a consumer holding the message, and
/// every shutdown that hands back a batch it could not store, counts one. A
/// consumer killed five times in a row on the same batch (an OOM-kill loop, a
/// crash loop) would have lost it silently.
pub const JETSTREAM_MAX_DELIVER: i64 = -1;

/// Why the consumer could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Settings that cannot work together.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The schema directory could not be loaded.
    #[error("cannot load the event schemas: {0}")]
    Schemas(#[from] eye_contract::RegistryError),
    /// The NATS options are unusable.
    #[error(transparent)]
    Nats(#[from] NatsConnectError),
    /// The ClickHouse schema cannot be migrated by this binary.
    #[error("ClickHouse schema: {0}")]
    Migration(#[from] MigrationError),
    /// The HTTP server of the operations endpoints failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the consumer, with its operations endpoints on `listener`, until `shutdown`
/// is cancelled.
///
/// Start-up order: bad configuration or schemas fail at once; the endpoints
/// come up; then the ClickHouse schema is migrated and the JetStream streams and
/// durable consumers are created, each retried until it works (so the consumer
/// starts, not ready, while a dependency is down); then the pipelines run.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    config.check()?;
    // Bad schemas stop the start-up here, with the file named, rather than at the first event.
    let schemas = SharedSchemas::load(
        &config.schemas_dir,
        config.pipeline.time_rules(),
        config.pipeline.limits(),
    )?;
    let reloader = reload::on_sighup(vec![Arc::clone(&schemas) as _], shutdown.clone());
    let nats = config.nats.connect(BINARY).await?;
    let clickhouse = eye_server_kit::clickhouse::client(&config.clickhouse.config());

    let mut registry = ops::registry("eye_consumer");
    let metrics = Metrics::register(&mut registry);
    let status = Status::new();
    let ops = Ops::new(
        registry,
        vec![
            Box::new(NatsReady(nats.clone())),
            Box::new(ClickHouseReady(clickhouse.clone())),
            Box::new(PipelineReady {
                status: status.clone(),
                max_lag: config.pipeline.max_lag,
            }),
        ],
    );
    let router = ops.router().merge(status::router(status.clone()));

    let grace = Duration::from_secs(config.shutdown_grace_secs);
    // Cancelled `grace` after `shutdown`: a batch that still cannot be stored
    // by then is handed back to JetStream.
    let hard_stop = CancellationToken::new();
    tokio::spawn({
        let (shutdown, hard_stop) = (shutdown.clone(), hard_stop.clone());
        async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
            hard_stop.cancel();
        }
    });

    let work = Work {
        config: &config,
        nats,
        clickhouse,
        schemas,
        metrics,
        status,
    };
    let (served, worked) = tokio::join!(
        serve(listener, router, shutdown.clone(), grace),
        work.run(shutdown.clone(), hard_stop),
    );
    reloader.abort();
    worked?;
    served?;
    Ok(())
}

/// Everything the pipelines need, gathered at start-up.
struct Work<'a> {
    config: &'a Config,
    nats: async_nats::Client,
    clickhouse: clickhouse::Client,
    schemas: Arc<SharedSchemas>,
    metrics: Metrics,
    status: Arc<Status>,
}

impl Work<'_> {
    async fn run(
        self,
        shutdown: CancellationToken,
        hard_stop: CancellationToken,
    ) -> Result<(), ConsumerError> {
        let result = self.run_inner(shutdown.clone(), hard_stop).await;
        if result.is_err() {
            // Nothing can work without the schema: stop the endpoints too.
            shutdown.cancel();
        }
        result
    }

    async fn run_inner(
        self,
        shutdown: CancellationToken,
        hard_stop: CancellationToken,
    ) -> Result<(), ConsumerError> {
        let p = &self.config.pipeline;
        let database = self.config.clickhouse.database.clone();
        let migrated = retry_until(&shutdown, "ClickHouse schema migration", || async {
            match migrations::migrate(&self.clickhouse, &database).await {
                Ok(applied) => {
                    tracing::info!(%database, ?applied, "ClickHouse schema is up to date");
                    let version = migrations::MIGRATIONS.last().map_or(0, |m| m.version);
                    self.status.set_schema(Ok(version));
                    Ok(Ok(()))
                }
                Err(error) if error.is_permanent() => Ok(Err(error)),
                Err(error) => {
                    self.status.set_schema(Err(error.to_string()));
                    Err(error.to_string())
                }
            }
        })
        .await;
        match migrated {
            None => return Ok(()),
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(())) => {}
        }

        let js = jetstream::new(self.nats.clone());
        let Some(handles) = retry_until(&shutdown, "JetStream set-up", || async {
            let outcome = setup_jetstream(&js, self.config).await;
            let done = outcome.as_ref().map(|_| ()).map_err(String::clone);
            self.status.set_jetstream(done);
            outcome
        })
        .await
        else {
            return Ok(());
        };

        let settings = Settings {
            batch_size: usize::try_from(p.batch_size).unwrap_or(1000),
            batch_wait: p.batch_wait,
            max_deliver: p.max_deliver,
            ack_wait: p.ack_wait,
            retry_min: p.retry_min,
            retry_max: p.retry_max,
            reject_raw_cap: p.reject_raw_cap,
            skip_acks: p.fault_skip_acks,
        };
        let store = Store::new(
            self.clickhouse.clone(),
            p.insert_timeout,
            self.metrics.clone(),
        );
        let pipeline = |lane, consumer| Pipeline {
            lane,
            consumer,
            js: js.clone(),
            nats: self.nats.clone(),
            store: store.clone(),
            schemas: Arc::clone(&self.schemas),
            metrics: self.metrics.clone(),
            status: self.status.clone(),
            settings: settings.clone(),
        };
        let monitor = monitor::Monitor {
            events: handles.events.clone(),
            events_stream: handles.events_stream,
            rejects: handles.rejects.clone(),
            dead_letters: handles.dead_letters,
            status: self.status.clone(),
            metrics: self.metrics.clone(),
            interval: p.lag_poll_interval,
            trim_above_percent: p.stream_trim_above,
        };
        tracing::info!(consumer = %p.consumer_name, "consuming");
        tokio::join!(
            pipeline(Lane::Events, handles.events).run(shutdown.clone(), hard_stop.clone()),
            pipeline(Lane::Rejects, handles.rejects).run(shutdown.clone(), hard_stop),
            monitor.run(shutdown),
        );
        Ok(())
    }
}

/// The JetStream objects the consumer works with.
struct Handles {
    events: PullConsumer,
    events_stream: Stream,
    rejects: PullConsumer,
    dead_letters: Stream,
}

/// Creates or updates the streams and the two durable consumers.
async fn setup_jetstream(js: &jetstream::Context, config: &Config) -> Result<Handles, String> {
    let p = &config.pipeline;
    create_or_update_streams(js, &config.streams)
        .await
        .map_err(|error| error.to_string())?;
    let durable = |name: String| pull::Config {
        durable_name: Some(name),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: p.ack_wait,
        max_deliver: JETSTREAM_MAX_DELIVER,
        max_ack_pending: p.max_ack_pending,
        ..Default::default()
    };
    let stream = |name: &'static str| async move {
        js.get_stream(name)
            .await
            .map_err(|error| format!("stream {name}: {error}"))
    };
    let events_stream = stream(EVENTS_STREAM).await?;
    let events = events_stream
        .create_consumer(durable(p.consumer_name.clone()))
        .await
        .map_err(|error| format!("consumer {} on {EVENTS_STREAM}: {error}", p.consumer_name))?;
    let rejects_stream = stream(REJECTS_STREAM).await?;
    let rejects = rejects_stream
        .create_consumer(durable(p.rejects_consumer_name()))
        .await
        .map_err(|error| {
            format!(
                "consumer {} on {REJECTS_STREAM}: {error}",
                p.rejects_consumer_name()
            )
        })?;
    let dead_letters = stream(DEADLETTER_STREAM).await?;
    Ok(Handles {
        events,
        events_stream,
        rejects,
        dead_letters,
    })
}

/// Calls `attempt` until it succeeds, pausing with capped exponential backoff
/// between failures; `None` if `shutdown` comes first.
async fn retry_until<T, F, Fut>(
    shutdown: &CancellationToken,
    what: &'static str,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        let outcome = tokio::select! {
            outcome = attempt() => outcome,
            _ = shutdown.cancelled() => return None,
        };
        match outcome {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, ?pause, "{what} failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => return None,
                }
                pause = (pause * 2).min(STARTUP_RETRY_MAX);
            }
        }
    }
}

/// The validator of `config`: its schemas, time rules and limits (the
/// pipeline's and `replay`'s, so both judge an event alike).
pub fn validator(config: &Config) -> Result<Validator, eye_contract::RegistryError> {
    let schemas = load_schemas(&config.schemas_dir)?;
    Ok(Validator::new(schemas)
        .with_time_rules(config.pipeline.time_rules())
        .with_limits(config.pipeline.limits()))
}

fn load_schemas(
    dir: &std::path::Path,
) -> Result<Arc<eye_contract::SchemaRegistry>, eye_contract::RegistryError> {
    let schemas = eye_contract::SchemaRegistry::load_dir(dir)?;
    tracing::info!(dir = %dir.display(), categories = ?schemas.categories().collect::<Vec<_>>(), "loaded event schemas");
    Ok(Arc::new(schemas))
}
