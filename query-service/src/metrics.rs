//! The query service's metrics, and their names in one place. Every name gets
//! the registry's `eye_query_` prefix (and counters a `_total` suffix).

use std::time::Duration;

use eye_server_kit::http::RequestCounter;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// HTTP requests answered, by route and status.
pub const REQUESTS: &str = "http_requests";
/// Time until a query's answer is ready (a JSON page collected, an export's
/// first row), by route (seconds).
pub const QUERY_DURATION: &str = "query_duration";
/// Rows answered, by route.
pub const ROWS: &str = "rows";

/// Labels of per-route series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template.
    pub route: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn query_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metrics; clones share the same series.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// See [`REQUESTS`].
    pub requests: RequestCounter,
    /// See [`QUERY_DURATION`].
    pub query_duration: HistogramFamily,
    /// See [`ROWS`].
    pub rows: Family<RouteLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            requests: Family::default(),
            query_duration: Family::new_with_constructor(query_histogram),
            rows: Family::default(),
        };
        registry.register(
            REQUESTS,
            "HTTP requests answered, by route and status",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            QUERY_DURATION,
            "Time until a query's answer is ready (JSON page collected, export's first row), by route",
            Unit::Seconds,
            metrics.query_duration.clone(),
        );
        registry.register(ROWS, "Rows answered, by route", metrics.rows.clone());
        metrics
    }

    /// Records a finished query of `route`.
    pub fn observe_query(&self, route: &'static str, took: Duration, rows: u64) {
        self.query_duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
        self.count_rows(route, rows);
    }

    /// Counts rows answered by `route`.
    pub fn count_rows(&self, route: &'static str, rows: u64) {
        if rows > 0 {
            self.rows.get_or_create(&RouteLabels { route }).inc_by(rows);
        }
    }
}
