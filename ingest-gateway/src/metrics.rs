//! The gateway's metrics, and their names in one place. Every name gets the
//! registry's `eye_gateway_` prefix (and counters a `_total` suffix).

use eye_contract::{ErrorCode, RetryCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// HTTP requests answered, by route and status.
pub const REQUESTS: &str = "http_requests";
/// Events accepted (acknowledged by JetStream, duplicates included).
pub const EVENTS_ACCEPTED: &str = "events_accepted";
/// Events rejected, by code.
pub const EVENTS_REJECTED: &str = "events_rejected";
/// Valid events the broker did not take, by retry code.
pub const EVENTS_FAILED: &str = "events_failed";
/// Time from a request's first publish to its last acknowledgement (seconds).
pub const PUBLISH_DURATION: &str = "publish_duration";
/// Events sent to JetStream and not yet acknowledged.
pub const INFLIGHT_PUBLISHES: &str = "inflight_publishes";
/// Reject records that could not be published to the rejects subject.
pub const REJECT_PUBLISH_FAILURES: &str = "reject_publish_failures";

pub use eye_server_kit::http::RequestLabels;

/// Labels of per-code event counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// The error or retry code.
    pub code: &'static str,
}

/// The gateway's metrics; clones share the same series.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// See [`REQUESTS`].
    pub requests: Family<RequestLabels, Counter>,
    /// See [`EVENTS_ACCEPTED`].
    pub accepted: Counter,
    /// See [`EVENTS_REJECTED`].
    pub rejected: Family<CodeLabels, Counter>,
    /// See [`EVENTS_FAILED`].
    pub failed: Family<CodeLabels, Counter>,
    /// See [`PUBLISH_DURATION`].
    pub publish_duration: Histogram,
    /// See [`INFLIGHT_PUBLISHES`].
    pub inflight: Gauge,
    /// See [`REJECT_PUBLISH_FAILURES`].
    pub reject_publish_failures: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`. Every code is
    /// pre-registered at zero, so dashboards see a series before its first event.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            requests: Family::default(),
            accepted: Counter::default(),
            rejected: Family::default(),
            failed: Family::default(),
            // 1 ms .. ~16 s.
            publish_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            inflight: Gauge::default(),
            reject_publish_failures: Counter::default(),
        };
        for code in ErrorCode::ALL {
            drop(metrics.rejected.get_or_create(&CodeLabels {
                code: code.as_str(),
            }));
        }
        for code in RetryCode::ALL {
            drop(metrics.failed.get_or_create(&CodeLabels {
                code: code.as_str(),
            }));
        }
        registry.register(
            REQUESTS,
            "HTTP requests answered, by route and status",
            metrics.requests.clone(),
        );
        registry.register(
            EVENTS_ACCEPTED,
            "Events accepted and acknowledged by JetStream",
            metrics.accepted.clone(),
        );
        registry.register(
            EVENTS_REJECTED,
            "Events rejected, by code",
            metrics.rejected.clone(),
        );
        registry.register(
            EVENTS_FAILED,
            "Valid events the broker did not take (the client should retry), by code",
            metrics.failed.clone(),
        );
        registry.register_with_unit(
            PUBLISH_DURATION,
            "Time from a request's first publish to its last JetStream acknowledgement",
            Unit::Seconds,
            metrics.publish_duration.clone(),
        );
        registry.register(
            INFLIGHT_PUBLISHES,
            "Events sent to JetStream and not yet acknowledged",
            metrics.inflight.clone(),
        );
        registry.register(
            REJECT_PUBLISH_FAILURES,
            "Reject records that could not be published to the rejects subject",
            metrics.reject_publish_failures.clone(),
        );
        metrics
    }

    /// Counts one rejected event.
    pub fn count_rejected(&self, code: ErrorCode) {
        self.rejected
            .get_or_create(&CodeLabels {
                code: code.as_str(),
            })
            .inc();
    }

    /// Counts one valid event the broker did not take.
    pub fn count_failed(&self, code: RetryCode) {
        self.failed
            .get_or_create(&CodeLabels {
                code: code.as_str(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exposed_with_the_prefix() {
        let mut registry = Registry::with_prefix("eye_gateway");
        let metrics = Metrics::register(&mut registry);
        metrics.count_rejected(ErrorCode::TimestampInFuture);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for name in [
            "eye_gateway_events_accepted_total",
            "eye_gateway_events_rejected_total{code=\"timestamp_in_future\"} 1",
            "eye_gateway_events_rejected_total{code=\"invalid_json\"} 0",
            "eye_gateway_events_failed_total{code=\"publish_timeout\"} 0",
            "eye_gateway_publish_duration_seconds_bucket",
            "eye_gateway_inflight_publishes",
            "eye_gateway_reject_publish_failures_total",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }
}
