//! [`TimeRules`]: which event times are acceptable relative to "now".
//!
//! The rule: an event time must be on or after 1970-01-01T00:00:00Z (ClickHouse
//! `DateTime` starts there, so earlier times cannot be stored faithfully), at
//! most `max_future_skew` ahead of the server clock (senders' clocks drift, but
//! an event from the future is a bug), and — only if configured — no older
//! than `max_age` (off by default because historical imports are normal).
//! Both bounds are inclusive: exactly `now + max_future_skew` and exactly
//! `now - max_age` are accepted.

use std::time::Duration;

use crate::error::{ErrorCode, EventError};
use crate::timestamp::{duration_micros, Timestamp};

/// The default allowed clock skew into the future: 5 minutes.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);

/// Bounds on an event's time relative to the server clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRules {
    /// How far ahead of the server clock an event may be. Default: 5 minutes.
    pub max_future_skew: Duration,
    /// How far behind the server clock an event may be; `None` (the default)
    /// means any age, down to 1970-01-01.
    pub max_age: Option<Duration>,
}

impl Default for TimeRules {
    fn default() -> Self {
        TimeRules {
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            max_age: None,
        }
    }
}

impl TimeRules {
    /// Checks `ts` against these rules at server time `now`, giving
    /// `timestamp_too_old` or `timestamp_in_future` at `/timestamp`.
    pub fn check(&self, ts: Timestamp, now: Timestamp) -> Result<(), EventError> {
        if ts < Timestamp::UNIX_EPOCH {
            return Err(EventError::new(
                ErrorCode::TimestampTooOld,
                format!(
                    "timestamp {ts} is before 1970-01-01T00:00:00Z, the earliest time that can be stored"
                ),
                "/timestamp",
            ));
        }
        let latest = now.saturating_add(self.max_future_skew);
        if ts > latest {
            let ahead = ts.as_micros().saturating_sub(now.as_micros());
            return Err(EventError::new(
                ErrorCode::TimestampInFuture,
                format!(
                    "timestamp {ts} is {} ahead of the server clock ({now}); at most {} of clock skew is allowed",
                    format_micros(ahead),
                    format_micros(duration_micros(self.max_future_skew)),
                ),
                "/timestamp",
            ));
        }
        if let Some(max_age) = self.max_age {
            let earliest = now.saturating_sub(max_age);
            if ts < earliest {
                return Err(EventError::new(
                    ErrorCode::TimestampTooOld,
                    format!(
                        "timestamp {ts} is older than the maximum age of {} (server clock {now})",
                        format_micros(duration_micros(max_age)),
                    ),
                    "/timestamp",
                ));
            }
        }
        Ok(())
    }
}

/// `300s`, `0.000001s`: seconds, with the microseconds only when there are any.
fn format_micros(micros: i64) -> String {
    let secs = micros / 1_000_000;
    let frac = (micros % 1_000_000).abs();
    if frac == 0 {
        format!("{secs}s")
    } else {
        format!("{secs}.{frac:06}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const NOW: &str = "2021-09-26 09:15:27.243860";

    #[test]
    fn defaults_are_five_minutes_and_no_max_age() {
        let r = TimeRules::default();
        assert_eq!(r.max_future_skew, Duration::from_secs(300));
        assert_eq!(r.max_age, None);
    }

    #[test]
    fn future_skew_boundary_is_inclusive() {
        let r = TimeRules::default();
        let now = ts(NOW);
        assert_eq!(r.check(now, now), Ok(()));
        let at_limit = now.saturating_add(Duration::from_secs(300));
        assert_eq!(r.check(at_limit, now), Ok(()));
        let past_limit = Timestamp::from_micros(at_limit.as_micros() + 1);
        let e = r.check(past_limit, now).expect_err("1 µs past the skew");
        assert_eq!(e.code, ErrorCode::TimestampInFuture);
        assert_eq!(e.pointer, "/timestamp");
        assert!(e.message.contains("300.000001s ahead"), "{}", e.message);
        assert!(e.message.contains("at most 300s"), "{}", e.message);
    }

    #[test]
    fn before_1970_is_always_too_old() {
        let r = TimeRules::default();
        let now = ts(NOW);
        let e = r
            .check(ts("1969-12-31 23:59:59.999999"), now)
            .expect_err("before epoch");
        assert_eq!(e.code, ErrorCode::TimestampTooOld);
        assert!(e.message.contains("1970-01-01"), "{}", e.message);
        assert_eq!(r.check(ts("1970-01-01 00:00:00"), now), Ok(()));
        let e = r.check(ts("0000-01-01 00:00:00"), now).expect_err("year 0");
        assert_eq!(e.code, ErrorCode::TimestampTooOld);
    }

    #[test]
    fn max_age_is_off_by_default_and_inclusive_when_set() {
        let now = ts(NOW);
        let old = ts("1971-01-01 00:00:00");
        assert_eq!(TimeRules::default().check(old, now), Ok(()));

        let day = Duration::from_secs(86_400);
        let r = TimeRules {
            max_age: Some(day),
            ..TimeRules::default()
        };
        let at_limit = now.saturating_sub(day);
        assert_eq!(r.check(at_limit, now), Ok(()));
        let e = r
            .check(Timestamp::from_micros(at_limit.as_micros() - 1), now)
            .expect_err("1 µs older than the max age");
        assert_eq!(e.code, ErrorCode::TimestampTooOld);
        assert!(e.message.contains("maximum age of 86400s"), "{}", e.message);
    }
}
