//! Reading one number from a Prometheus text exposition (`/metrics`).

use crate::http::{Conn, HttpError, Target};

/// Why a metric could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// The endpoint did not answer.
    #[error("GET /metrics: {0}")]
    Http(#[from] HttpError),
    /// It answered, without the metric.
    #[error("GET /metrics answered {status} without {name}")]
    Missing {
        /// The metric.
        name: String,
        /// The answer's status.
        status: u16,
    },
}

/// The value of the unlabelled sample `name` in `text`.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Fetches `/metrics` of `target` and reads `name`.
pub async fn fetch(target: &Target, name: &str) -> Result<f64, MetricError> {
    let mut conn = Conn::open(target).await?;
    let answer = conn.get("/metrics", None).await?;
    let text = String::from_utf8_lossy(&answer.body);
    sample(&text, name).ok_or_else(|| MetricError::Missing {
        name: name.to_owned(),
        status: answer.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unlabelled_sample() {
        let text = "# TYPE eye_consumer_events_stored counter\neye_consumer_events_stored_total_x 5\neye_consumer_events_stored_total 1234\n# EOF\n";
        assert_eq!(
            sample(text, "eye_consumer_events_stored_total"),
            Some(1234.0)
        );
        assert_eq!(sample(text, "nope"), None);
    }
}
