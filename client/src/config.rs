//! How events are batched ([`BatchConfig`]) and retried ([`RetryPolicy`]).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// When a batch is sent and how many are in flight.
///
/// A batch is sent as soon as it holds `max_events` events or `max_bytes`
/// bytes of serialized events, or `linger` after its first event arrived,
/// whichever comes first; [`crate::Client::flush`] sends it at once. Up to
/// `concurrency` batches are in flight (each one until it is fully answered,
/// retries included); beyond that, and with `queue_capacity` events waiting,
/// [`crate::Client::send`] waits (backpressure).
///
/// `max_events: 1` sends one request per event. The defaults stay inside the
/// gateway's default limits (1000 events, 1 MiB per request).
///
/// ```
/// use std::time::Duration;
/// let batching = eye_client::BatchConfig {
///     max_events: 1,
///     linger: Duration::ZERO,
///     ..Default::default()
/// };
/// assert_eq!(batching.concurrency, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most events in one request (default 500; at least 1).
    pub max_events: usize,
    /// Most bytes of serialized events in one request, before compression
    /// (default 512 KiB). A single larger event is still sent, alone.
    pub max_bytes: usize,
    /// How long a batch waits for more events after its first (default 5 ms).
    pub linger: Duration,
    /// Most batches in flight at once (default 4; at least 1).
    pub concurrency: usize,
    /// Events that may wait to be batched before `send` waits (default 10,000).
    pub queue_capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: 500,
            max_bytes: 512 * 1024,
            linger: Duration::from_millis(5),
            concurrency: 4,
            queue_capacity: 10_000,
        }
    }
}

/// How retryable failures are retried: capped exponential backoff with jitter.
///
/// Retryable: connection errors and timeouts, HTTP 408, 429, 500, 502, 503
/// and 504, and events the gateway answered `"status": "failed"` (a
/// [`eye_contract::RetryCode`] such as `publish_timeout`). Retrying is safe
/// because an event's id is a function of its content (or its own
/// `event_id`): a copy that did arrive is deduplicated.
///
/// Attempt `n` (from 1) waits a random time between half and all of
/// `min(max_backoff, initial_backoff * 2^(n-1))`, and at least what the
/// server asked for in `Retry-After` (capped at `max_backoff`).
///
/// ```
/// use std::time::Duration;
/// let retry = eye_client::RetryPolicy { max_retries: 3, ..Default::default() };
/// assert_eq!(retry.initial_backoff, Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt before an event is given up (default 10).
    pub max_retries: u32,
    /// The base wait before the first retry (default 100 ms).
    pub initial_backoff: Duration,
    /// The longest wait between two attempts (default 5 s).
    pub max_backoff: Duration,
    /// How long one request may take before it counts as timed out (default 30 s).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (from 1), honouring `retry_after`.
    pub(crate) fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = retry.saturating_sub(1).min(31);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        // Jitter: uniformly in [base/2, base].
        let half = base / 2;
        let spread = u64::try_from((base - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            random_u64() % (spread + 1)
        };
        let wait = half + Duration::from_micros(jitter);
        match retry_after {
            Some(asked) => wait.max(asked.min(self.max_backoff)),
            None => wait,
        }
    }
}

/// A random number from the standard library's randomly seeded hasher (no
/// extra dependency; jitter needs spread, not cryptographic quality).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        };
        for _ in 0..200 {
            let first = policy.backoff(1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3, None);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.backoff(40, None);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
        }
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let policy = RetryPolicy::default();
        let waits: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.backoff(4, None)).collect();
        assert!(waits.len() > 10, "{waits:?}");
    }

    #[test]
    fn retry_after_is_a_floor_capped_by_max_backoff() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(3),
            ..Default::default()
        };
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(60))),
            Duration::from_secs(3)
        );
    }
}
