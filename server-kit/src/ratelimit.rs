//! Per-client rate limits: one token bucket per client id, counted in events.
//!
//! A bucket holds at most `burst` tokens and gains `events_per_second` per
//! second. A request of `n` events is admitted when the bucket holds at least
//! `min(n, burst)` tokens, and then takes all `n` (the bucket may go below
//! zero): so a batch larger than the burst is still possible when the bucket
//! is full, and the long-run rate stays exactly the configured one, since the
//! debt must be refilled before the next request. Refused requests take
//! nothing.
//!
//! The limits come from the client registry of each request (so a reload
//! changes them at once); the buckets live here, keyed by client id, and
//! survive reloads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clients::RateLimit;

/// Buckets whose client sent nothing for this long are dropped (they would be full).
const IDLE_EVICTION: Duration = Duration::from_secs(600);
/// Evict idle buckets at most once per this many checks.
const EVICTION_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every client.
#[derive(Debug, Default)]
pub struct RateLimiter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<String, Bucket>,
    checks: u64,
}

/// A refused request: how long until it would be admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    /// Time until the bucket holds enough tokens for the request.
    pub retry_after: Duration,
}

impl Limited {
    /// `retry_after` in whole seconds, rounded up, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs_f64().ceil();
        if secs < 1.0 {
            1
        } else if secs >= u64::MAX as f64 {
            u64::MAX
        } else {
            secs as u64
        }
    }
}

impl RateLimiter {
    /// An empty limiter (every bucket starts full).
    pub fn new() -> RateLimiter {
        RateLimiter::default()
    }

    /// Takes `events` tokens from `client`'s bucket, or says how long to wait.
    pub fn check(&self, client: &str, limit: RateLimit, events: u64) -> Result<(), Limited> {
        self.check_at(client, limit, events, Instant::now())
    }

    /// Whether `client`'s bucket holds at least one token now (a cheap refusal
    /// before a body is read); takes nothing.
    pub fn has_tokens(&self, client: &str, limit: RateLimit) -> Result<(), Limited> {
        self.peek_at(client, limit, Instant::now())
    }

    fn peek_at(&self, client: &str, limit: RateLimit, now: Instant) -> Result<(), Limited> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bucket) = state.buckets.get(client) else {
            return Ok(());
        };
        let tokens = refilled(bucket, limit, now);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(wait_for(1.0 - tokens, limit))
        }
    }

    fn check_at(
        &self,
        client: &str,
        limit: RateLimit,
        events: u64,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.checks = state.checks.wrapping_add(1);
        if state.checks.is_multiple_of(EVICTION_EVERY) {
            state
                .buckets
                .retain(|_, b| now.saturating_duration_since(b.updated) < IDLE_EVICTION);
        }
        let burst = f64::from(limit.burst);
        let bucket = state.buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let tokens = refilled(bucket, limit, now);
        let needed = (events as f64).min(burst);
        if tokens < needed {
            // Keep the refill so far; take nothing.
            *bucket = Bucket {
                tokens,
                updated: now,
            };
            return Err(wait_for(needed - tokens, limit));
        }
        *bucket = Bucket {
            tokens: tokens - events as f64,
            updated: now,
        };
        Ok(())
    }
}

/// The bucket's tokens at `now`, capped at the burst (which a reload may have lowered).
fn refilled(bucket: &Bucket, limit: RateLimit, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * f64::from(limit.events_per_second)).min(f64::from(limit.burst))
}

fn wait_for(missing: f64, limit: RateLimit) -> Limited {
    let secs = missing / f64::from(limit.events_per_second.max(1));
    Limited {
        retry_after: Duration::from_secs_f64(secs.clamp(0.0, 1e9)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        events_per_second: 10,
        burst: 20,
    };

    #[test]
    fn a_full_bucket_admits_the_burst_then_refuses_until_refilled() {
        let limiter = RateLimiter::new();
        let t0 = Instant::now();
        assert!(limiter.check_at("a", LIMIT, 15, t0).is_ok());
        assert!(limiter.check_at("a", LIMIT, 5, t0).is_ok());
        let refused = limiter.check_at("a", LIMIT, 1, t0).expect_err("empty");
        assert!((refused.retry_after.as_secs_f64() - 0.1).abs() < 1e-9);
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(limiter.peek_at("a", LIMIT, t0).is_err());
        // Other clients have their own buckets.
        assert!(limiter.check_at("b", LIMIT, 20, t0).is_ok());
        // 0.5 s later: 5 tokens.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.peek_at("a", LIMIT, t1).is_ok());
        assert!(limiter.check_at("a", LIMIT, 6, t1).is_err());
        assert!(limiter.check_at("a", LIMIT, 5, t1).is_ok());
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert!(
            limiter.check_at("a", LIMIT, 21, t2).is_ok(),
            "a full bucket admits a larger batch"
        );
        let refused = limiter.check_at("a", LIMIT, 1, t2).expect_err("in debt");
        assert!(
            (refused.retry_after.as_secs_f64() - 0.2).abs() < 1e-9,
            "{refused:?}"
        );
    }

    #[test]
    fn a_larger_batch_waits_for_a_full_bucket() {
        let limiter = RateLimiter::new();
        let t0 = Instant::now();
        assert!(limiter.check_at("a", LIMIT, 10, t0).is_ok());
        let refused = limiter
            .check_at("a", LIMIT, 100, t0)
            .expect_err("needs the burst");
        assert!((refused.retry_after.as_secs_f64() - 1.0).abs() < 1e-9);
        assert_eq!(refused.retry_after_secs(), 1);
    }
}
