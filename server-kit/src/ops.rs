//! The operations endpoints every service serves: `GET /healthz` (the process is up),
//! `GET /readyz` (its dependencies answer) and `GET /metrics` (Prometheus text).
//!
//! Liveness and readiness are kept apart on purpose: a service whose broker is down
//! is alive (do not restart it) but not ready (do not send it traffic).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A dependency whose health decides readiness (a broker, a database).
pub trait ReadinessCheck: Send + Sync + 'static {
    /// A short name shown in the `/readyz` answer, e.g. `nats`.
    fn name(&self) -> &'static str;
    /// Resolves to `Ok` when the dependency answers, or to the reason it does not.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// Ready when the NATS connection is established.
pub struct NatsReady(pub async_nats::Client);

impl ReadinessCheck for NatsReady {
    fn name(&self) -> &'static str {
        "nats"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.0.connection_state() {
                async_nats::connection::State::Connected => Ok(()),
                state => Err(format!("connection is {state:?}").to_lowercase()),
            }
        })
    }
}

/// Ready when ClickHouse answers `SELECT 1`.
pub struct ClickHouseReady(pub ::clickhouse::Client);

impl ReadinessCheck for ClickHouseReady {
    fn name(&self) -> &'static str {
        "clickhouse"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.0.query("SELECT 1").fetch_one::<u8>().await {
                Ok(1) => Ok(()),
                Ok(other) => Err(format!("SELECT 1 returned {other}")),
                Err(error) => Err(error.to_string()),
            }
        })
    }
}

/// A metrics registry whose names start with `prefix` (e.g. `eye_gateway`), holding
/// a `<prefix>_build_info` metric with the version, so dashboards can tell releases apart.
pub fn registry(prefix: &str) -> Registry {
    let mut registry = Registry::with_prefix(prefix);
    registry.register(
        "build",
        "Build information of this service",
        prometheus_client::metrics::info::Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry
}

/// State of the operations endpoints: the metrics registry and the readiness checks.
#[derive(Clone)]
pub struct Ops {
    registry: Arc<Registry>,
    checks: Arc<Vec<Box<dyn ReadinessCheck>>>,
}

impl Ops {
    /// Creates the endpoints' state from a finished registry and the service's checks.
    pub fn new(registry: Registry, checks: Vec<Box<dyn ReadinessCheck>>) -> Self {
        Ops {
            registry: Arc::new(registry),
            checks: Arc::new(checks),
        }
    }

    /// Runs every check concurrently, each bounded by a timeout.
    pub async fn readiness(&self) -> Readiness {
        let results = futures::future::join_all(self.checks.iter().map(|check| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            CheckResult {
                name: check.name(),
                ok: outcome.is_ok(),
                error: outcome.err(),
            }
        }))
        .await;
        Readiness {
            ready: results.iter().all(|r| r.ok),
            checks: results,
        }
    }

    /// The router serving `/healthz`, `/readyz` and `/metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

/// The `/readyz` answer.
#[derive(Debug, serde::Serialize)]
pub struct Readiness {
    /// True when every check passed.
    pub ready: bool,
    /// One entry per dependency.
    pub checks: Vec<CheckResult>,
}

/// One dependency's readiness.
#[derive(Debug, serde::Serialize)]
pub struct CheckResult {
    /// The dependency's name.
    pub name: &'static str,
    /// Whether it answered.
    pub ok: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let readiness = ops.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

async fn metrics(State(ops): State<Ops>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &ops.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<(), String>);
    impl ReadinessCheck for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn check(&self) -> BoxFuture<'_, Result<(), String>> {
            let outcome = self.0.clone();
            Box::pin(async move { outcome })
        }
    }

    struct Hangs;
    impl ReadinessCheck for Hangs {
        fn name(&self) -> &'static str {
            "hangs"
        }
        fn check(&self) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(futures::future::pending())
        }
    }

    #[tokio::test]
    async fn ready_only_when_every_check_passes() {
        let ops = Ops::new(Registry::default(), vec![Box::new(Fixed(Ok(())))]);
        assert!(ops.readiness().await.ready);

        let ops = Ops::new(
            Registry::default(),
            vec![Box::new(Fixed(Ok(()))), Box::new(Fixed(Err("down".into())))],
        );
        let readiness = ops.readiness().await;
        assert!(!readiness.ready);
        assert_eq!(readiness.checks[1].error.as_deref(), Some("down"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_times_out_as_not_ready() {
        let ops = Ops::new(Registry::default(), vec![Box::new(Hangs)]);
        let readiness = ops.readiness().await;
        assert!(!readiness.ready);
        assert!(readiness.checks[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("no answer"));
    }
}
