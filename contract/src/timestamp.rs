//! [`Timestamp`]: an instant as microseconds since the Unix epoch (UTC), and
//! its one parser and one printer.
//!
//! # Accepted spellings
//!
//! One grammar covers both formats of the wire contract:
//!
//! ```text
//! YYYY-MM-DD ( "T" | "t" | " " ) HH:MM:SS [ "." 1–9 digits ] [ "Z" | "z" | ("+" | "-") HH:MM ]
//! ```
//!
//! - `2021-09-26 09:15:27.243860` — the native format; no zone means UTC.
//! - `2021-09-26T09:15:27.243860Z`, `2021-09-26T11:15:27+02:00` — RFC 3339;
//!   the offset is applied, the result is UTC.
//! - The separator may be `T`, `t` or a space in every form (RFC 3339 §5.6
//!   allows the space), and the zone is optional in every form (absent =
//!   UTC). One grammar instead of two means no spelling is accepted by one
//!   path and refused by another.
//!
//! Microseconds are kept exactly. Fraction digits 7–9 are truncated, not
//! rounded: `.2438609` is `.243860`, so a parsed instant never moves to a
//! later microsecond (or a later second/day) than the one written.
//!
//! Rejected (all [`TimestampError`], i.e. `invalid_timestamp`): an empty
//! string, surrounding whitespace, a year without exactly 4 digits (so
//! 0000–9999), dates that do not exist (Feb 30, Feb 29 outside leap years),
//! hour 24, minute 60, leap seconds (`:60` — Unix time has no place for
//! them), offsets beyond ±23:59, and anything else that does not match the
//! grammar. Year 0000 *parses*; it is refused later as `timestamp_too_old` by
//! [`crate::TimeRules`].
//!
//! The parser works on bytes without allocating: it runs once per event.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, EventError};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// An instant in UTC with microsecond precision: microseconds since
/// 1970-01-01T00:00:00Z (negative before it).
///
/// Serializes as RFC 3339 with 6 fraction digits and `Z`
/// (`2021-09-26T09:15:27.243860Z`) and deserializes with [`Timestamp::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

/// Why a timestamp string was not accepted; every variant is `invalid_timestamp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The string is empty.
    #[error("timestamp is empty")]
    Empty,
    /// The string starts or ends with whitespace.
    #[error("timestamp has leading or trailing whitespace")]
    SurroundingWhitespace,
    /// The string does not follow the grammar; says what was expected where.
    #[error(
        "timestamp is not in an accepted format ({0}); use \"YYYY-MM-DD HH:MM:SS[.ffffff]\" \
         (UTC) or RFC 3339 such as \"2021-09-26T09:15:27.243860Z\""
    )]
    Malformed(&'static str),
    /// The year does not have exactly 4 digits (e.g. year 10000).
    #[error("timestamp year must have exactly 4 digits (0000-9999)")]
    YearDigits,
    /// The month is not 01–12.
    #[error("timestamp month {0:02} is out of range (01-12)")]
    Month(u32),
    /// The day does not exist in that month of that year.
    #[error(
        "timestamp day {day:02} does not exist in {year:04}-{month:02}, which has {days} days"
    )]
    Day {
        /// The year as written.
        year: u32,
        /// The month as written.
        month: u32,
        /// The day as written.
        day: u32,
        /// How many days that month has.
        days: u32,
    },
    /// The hour is not 00–23 (hour 24 included).
    #[error("timestamp hour {0:02} is out of range (00-23)")]
    Hour(u32),
    /// The minute is not 00–59.
    #[error("timestamp minute {0:02} is out of range (00-59)")]
    Minute(u32),
    /// Second 60: leap seconds cannot be represented in Unix time.
    #[error("timestamp second 60 (a leap second) is not supported; Unix time has no leap seconds")]
    LeapSecond,
    /// The second is above 60.
    #[error("timestamp second {0:02} is out of range (00-59)")]
    Second(u32),
    /// A `.` not followed by 1 to 9 digits.
    #[error("timestamp fraction must have 1 to 9 digits after the '.'")]
    FractionDigits,
    /// The hours of the UTC offset are not 00–23.
    #[error("timestamp UTC offset hours {0:02} are out of range (00-23)")]
    OffsetHour(u32),
    /// The minutes of the UTC offset are not 00–59.
    #[error("timestamp UTC offset minutes {0:02} are out of range (00-59)")]
    OffsetMinute(u32),
}

impl From<TimestampError> for EventError {
    fn from(e: TimestampError) -> Self {
        EventError::new(ErrorCode::InvalidTimestamp, e.to_string(), "/timestamp")
    }
}

impl Timestamp {
    /// 1970-01-01T00:00:00Z, the earliest instant ClickHouse `DateTime` stores.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch (negative before it).
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The current time from the system clock.
    pub fn now() -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_micros())
    }

    /// Converts from chrono, truncating sub-microsecond precision.
    pub fn from_datetime(dt: chrono::DateTime<chrono::Utc>) -> Timestamp {
        Timestamp(dt.timestamp_micros())
    }

    /// Converts to chrono; `None` only outside chrono's range (±262,000 years).
    pub fn to_datetime(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_micros(self.0)
    }

    /// This instant moved `d` later, saturating at the end of the representable range.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_micros(d)))
    }

    /// This instant moved `d` earlier, saturating at the start of the representable range.
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_micros(d)))
    }

    /// Parses a wire timestamp (see the module documentation for the grammar).
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        parse_bytes(s)
    }

    /// RFC 3339 in UTC with exactly 6 fraction digits: `2021-09-26T09:15:27.243860Z`.
    ///
    /// Parsing the result gives the same instant back for years 0000–9999
    /// (every timestamp the contract accepts).
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(MICROS_PER_SECOND);
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let sod = secs.rem_euclid(SECONDS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Borrowing first avoids an allocation for the common JSON case; a
        // String fallback keeps escaped input working.
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whole microseconds in `d`, saturating at `i64::MAX`.
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Two ASCII digits at `i`, if both are present.
fn two_digits(b: &[u8], i: usize) -> Option<u32> {
    match (b.get(i), b.get(i + 1)) {
        (Some(h @ b'0'..=b'9'), Some(l @ b'0'..=b'9')) => {
            Some(u32::from(h - b'0') * 10 + u32::from(l - b'0'))
        }
        _ => None,
    }
}

fn expect_byte(b: &[u8], i: usize, want: u8, what: &'static str) -> Result<(), TimestampError> {
    if b.get(i) == Some(&want) {
        Ok(())
    } else {
        Err(TimestampError::Malformed(what))
    }
}

fn parse_bytes(s: &str) -> Result<Timestamp, TimestampError> {
    use TimestampError as E;
    if s.is_empty() {
        return Err(E::Empty);
    }
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(E::SurroundingWhitespace);
    }
    let b = s.as_bytes();

    // Year: exactly four digits. A longer or shorter run of digits ending in
    // '-' is a year of the wrong width and gets its own message.
    let year_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year_digits != 4 {
        return Err(if year_digits > 0 && b.get(year_digits) == Some(&b'-') {
            E::YearDigits
        } else {
            E::Malformed("expected a 4-digit year")
        });
    }
    let year = b[..4]
        .iter()
        .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'));
    expect_byte(b, 4, b'-', "expected '-' after the year")?;
    let month = two_digits(b, 5).ok_or(E::Malformed("expected a 2-digit month"))?;
    expect_byte(b, 7, b'-', "expected '-' after the month")?;
    let day = two_digits(b, 8).ok_or(E::Malformed("expected a 2-digit day"))?;
    match b.get(10) {
        Some(b'T' | b't' | b' ') => {}
        _ => {
            return Err(E::Malformed(
                "expected 'T' or a space between the date and the time",
            ))
        }
    }
    let hour = two_digits(b, 11).ok_or(E::Malformed("expected a 2-digit hour"))?;
    expect_byte(b, 13, b':', "expected ':' after the hour")?;
    let minute = two_digits(b, 14).ok_or(E::Malformed("expected a 2-digit minute"))?;
    expect_byte(b, 16, b':', "expected ':' after the minute")?;
    let second = two_digits(b, 17).ok_or(E::Malformed("expected 2-digit seconds"))?;

    let mut i = 19;
    let mut frac_micros: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let n = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return Err(E::FractionDigits);
        }
        // Only the first six digits matter: the rest is truncated (floor).
        for k in 0..6 {
            let digit = if k < n { i64::from(b[i + k] - b'0') } else { 0 };
            frac_micros = frac_micros * 10 + digit;
        }
        i += n;
    }

    // Offset east of UTC in seconds; local time minus offset is UTC.
    let mut offset_secs: i64 = 0;
    match b.get(i) {
        None => {}
        Some(b'Z' | b'z') => i += 1,
        Some(sign @ (b'+' | b'-')) => {
            let oh = two_digits(b, i + 1).ok_or(E::Malformed("expected a UTC offset ±HH:MM"))?;
            expect_byte(b, i + 3, b':', "expected a UTC offset ±HH:MM")?;
            let om = two_digits(b, i + 4).ok_or(E::Malformed("expected a UTC offset ±HH:MM"))?;
            if oh > 23 {
                return Err(E::OffsetHour(oh));
            }
            if om > 59 {
                return Err(E::OffsetMinute(om));
            }
            offset_secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                offset_secs = -offset_secs;
            }
            i += 6;
        }
        Some(_) => {
            return Err(E::Malformed(
                "expected '.', 'Z' or a UTC offset after the seconds",
            ))
        }
    }
    if i != b.len() {
        return Err(E::Malformed("unexpected characters after the time zone"));
    }

    if !(1..=12).contains(&month) {
        return Err(E::Month(month));
    }
    let days = days_in_month(year, month);
    if day == 0 || day > days {
        return Err(E::Day {
            year,
            month,
            day,
            days,
        });
    }
    if hour > 23 {
        return Err(E::Hour(hour));
    }
    if minute > 59 {
        return Err(E::Minute(minute));
    }
    if second == 60 {
        return Err(E::LeapSecond);
    }
    if second > 59 {
        return Err(E::Second(second));
    }

    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * SECONDS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Ok(Timestamp(secs * MICROS_PER_SECOND + frac_micros))
}

// `u32::is_multiple_of` is newer (1.87) than the workspace's rust-version (1.85).
#[allow(clippy::manual_is_multiple_of)]
fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year` in the proleptic Gregorian calendar.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12).
///
/// Counts in 400-year eras starting in March, so the leap day is the last day
/// of the counted year and needs no special case.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let month_from_march = if m > 2 { m - 3 } else { m + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days separate 0000-03-01 (era 0, day 0) from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day) of a day number.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction (1–12, 1–31).
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Timestamp, TimestampError> {
        Timestamp::parse(s)
    }

    fn micros_of(s: &str) -> i64 {
        p(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
            .as_micros()
    }

    /// Reference value from chrono, independent of the hand-written arithmetic.
    fn chrono_micros(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> i64 {
        chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_micro_opt(h, mi, s, us))
            .expect("valid reference date")
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn native_format_without_fraction_is_utc() {
        assert_eq!(
            micros_of("2021-09-26 09:15:27"),
            chrono_micros(2021, 9, 26, 9, 15, 27, 0)
        );
    }

    #[test]
    fn fraction_of_1_to_6_digits_is_exact() {
        assert_eq!(
            micros_of("2021-09-26 09:15:27.2"),
            chrono_micros(2021, 9, 26, 9, 15, 27, 200_000)
        );
        assert_eq!(
            micros_of("2021-09-26 09:15:27.24386"),
            chrono_micros(2021, 9, 26, 9, 15, 27, 243_860)
        );
        assert_eq!(
            micros_of("2021-09-26 09:15:27.243860"),
            chrono_micros(2021, 9, 26, 9, 15, 27, 243_860)
        );
        assert_eq!(
            micros_of("2021-09-26 09:15:27.000001"),
            chrono_micros(2021, 9, 26, 9, 15, 27, 1)
        );
    }

    #[test]
    fn fraction_digits_7_to_9_are_truncated_not_rounded() {
        let base = chrono_micros(2021, 9, 26, 9, 15, 27, 243_860);
        assert_eq!(micros_of("2021-09-26 09:15:27.2438601"), base);
        assert_eq!(micros_of("2021-09-26 09:15:27.24386099"), base);
        assert_eq!(micros_of("2021-09-26 09:15:27.243860999"), base);
        // Truncation never carries into the next second.
        assert_eq!(
            micros_of("2021-12-31 23:59:59.999999999"),
            chrono_micros(2021, 12, 31, 23, 59, 59, 999_999)
        );
    }

    #[test]
    fn fraction_must_have_1_to_9_digits() {
        assert_eq!(
            p("2021-09-26 09:15:27."),
            Err(TimestampError::FractionDigits)
        );
        assert_eq!(
            p("2021-09-26 09:15:27.1234567890"),
            Err(TimestampError::FractionDigits)
        );
    }

    #[test]
    fn rfc3339_offsets_are_converted_to_utc() {
        let utc = chrono_micros(2021, 9, 26, 9, 15, 27, 243_860);
        assert_eq!(micros_of("2021-09-26T09:15:27.243860Z"), utc);
        assert_eq!(micros_of("2021-09-26t09:15:27.243860z"), utc);
        assert_eq!(micros_of("2021-09-26T11:15:27.243860+02:00"), utc);
        assert_eq!(micros_of("2021-09-26T03:45:27.243860-05:30"), utc);
        assert_eq!(micros_of("2021-09-26T09:15:27.243860+00:00"), utc);
        assert_eq!(micros_of("2021-09-26T09:15:27.243860-00:00"), utc);
        // Space separator with a zone, and T separator without one.
        assert_eq!(micros_of("2021-09-26 11:15:27.243860+02:00"), utc);
        assert_eq!(micros_of("2021-09-26T09:15:27.243860"), utc);
        // An offset can move the instant across a date boundary.
        assert_eq!(
            micros_of("2021-01-01T01:00:00+02:00"),
            chrono_micros(2020, 12, 31, 23, 0, 0, 0)
        );
    }

    #[test]
    fn offsets_out_of_range_or_malformed_are_rejected() {
        assert_eq!(
            p("2021-09-26T09:15:27+24:00"),
            Err(TimestampError::OffsetHour(24))
        );
        assert_eq!(
            p("2021-09-26T09:15:27+02:60"),
            Err(TimestampError::OffsetMinute(60))
        );
        assert!(matches!(
            p("2021-09-26T09:15:27+0200"),
            Err(TimestampError::Malformed(_))
        ));
        assert!(matches!(
            p("2021-09-26T09:15:27+02"),
            Err(TimestampError::Malformed(_))
        ));
        assert!(matches!(
            p("2021-09-26T09:15:27 UTC"),
            Err(TimestampError::Malformed(_))
        ));
        assert!(matches!(
            p("2021-09-26T09:15:27Z0"),
            Err(TimestampError::Malformed(_))
        ));
    }

    #[test]
    fn leap_days_follow_the_gregorian_calendar() {
        assert_eq!(
            micros_of("2020-02-29 12:00:00"),
            chrono_micros(2020, 2, 29, 12, 0, 0, 0)
        );
        assert_eq!(
            micros_of("2000-02-29 00:00:00"),
            chrono_micros(2000, 2, 29, 0, 0, 0, 0)
        );
        assert_eq!(
            p("2021-02-29 12:00:00"),
            Err(TimestampError::Day {
                year: 2021,
                month: 2,
                day: 29,
                days: 28
            })
        );
        assert_eq!(
            p("1900-02-29 12:00:00"),
            Err(TimestampError::Day {
                year: 1900,
                month: 2,
                day: 29,
                days: 28
            })
        );
        assert_eq!(
            p("2020-02-30 12:00:00"),
            Err(TimestampError::Day {
                year: 2020,
                month: 2,
                day: 30,
                days: 29
            })
        );
        assert!(matches!(
            p("2021-04-31 00:00:00"),
            Err(TimestampError::Day { .. })
        ));
        assert!(matches!(
            p("2021-04-00 00:00:00"),
            Err(TimestampError::Day { .. })
        ));
        assert_eq!(p("2021-13-01 00:00:00"), Err(TimestampError::Month(13)));
        assert_eq!(p("2021-00-01 00:00:00"), Err(TimestampError::Month(0)));
    }

    #[test]
    fn times_of_day_out_of_range_are_rejected() {
        assert_eq!(p("2021-09-26 24:00:00"), Err(TimestampError::Hour(24)));
        assert_eq!(p("2021-09-26 23:60:00"), Err(TimestampError::Minute(60)));
        assert_eq!(p("2016-12-31 23:59:60"), Err(TimestampError::LeapSecond));
        assert_eq!(p("2016-12-31T23:59:60Z"), Err(TimestampError::LeapSecond));
        assert_eq!(p("2021-09-26 23:59:61"), Err(TimestampError::Second(61)));
    }

    #[test]
    fn year_must_have_four_digits() {
        assert_eq!(p("10000-01-01 00:00:00"), Err(TimestampError::YearDigits));
        assert_eq!(p("999-01-01 00:00:00"), Err(TimestampError::YearDigits));
        assert!(matches!(
            p("+2021-01-01 00:00:00"),
            Err(TimestampError::Malformed(_))
        ));
        assert!(matches!(
            p("20210926T091527Z"),
            Err(TimestampError::Malformed(_))
        ));
    }

    #[test]
    fn year_0000_parses_and_is_before_the_epoch() {
        let ts = p("0000-01-01 00:00:00").expect("year 0 parses");
        assert_eq!(ts.as_micros(), chrono_micros(0, 1, 1, 0, 0, 0, 0));
        assert!(ts < Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn epoch_boundaries() {
        assert_eq!(micros_of("1970-01-01 00:00:00"), 0);
        assert_eq!(micros_of("1969-12-31 23:59:59.999999"), -1);
        assert_eq!(
            micros_of("9999-12-31 23:59:59.999999"),
            chrono_micros(9999, 12, 31, 23, 59, 59, 999_999)
        );
    }

    #[test]
    fn whitespace_empty_and_garbage_are_rejected() {
        assert_eq!(p(""), Err(TimestampError::Empty));
        assert_eq!(
            p(" 2021-09-26 09:15:27"),
            Err(TimestampError::SurroundingWhitespace)
        );
        assert_eq!(
            p("2021-09-26 09:15:27 "),
            Err(TimestampError::SurroundingWhitespace)
        );
        assert_eq!(
            p("2021-09-26 09:15:27\n"),
            Err(TimestampError::SurroundingWhitespace)
        );
        assert_eq!(
            p("\u{a0}2021-09-26 09:15:27"),
            Err(TimestampError::SurroundingWhitespace)
        );
        for bad in [
            "yesterday",
            "2021-09-26",
            "2021-09-26 09:15",
            "2021-9-26 09:15:27",
            "2021-09-26  09:15:27",
            "2021/09/26 09:15:27",
            "2021-09-26_09:15:27",
            "2021-09-26 09:15:27,5",
            "2021-09-26 09:15:27.5ü",
            "1632647727",
            "2021-09-26 ９:15:27",
        ] {
            assert!(
                matches!(p(bad), Err(TimestampError::Malformed(_))),
                "{bad:?} gave {:?}",
                p(bad)
            );
        }
    }

    #[test]
    fn errors_become_invalid_timestamp_at_the_timestamp_field() {
        let e: EventError = TimestampError::Hour(24).into();
        assert_eq!(e.code, ErrorCode::InvalidTimestamp);
        assert_eq!(e.pointer, "/timestamp");
        assert!(e.message.contains("hour 24"), "{}", e.message);
    }

    #[test]
    fn printing_gives_rfc3339_with_six_fraction_digits() {
        assert_eq!(
            p("2021-09-26 09:15:27.24386").expect("parses").to_rfc3339(),
            "2021-09-26T09:15:27.243860Z"
        );
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_rfc3339(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(-1).to_rfc3339(),
            "1969-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            p("0000-01-01 00:00:00").expect("parses").to_rfc3339(),
            "0000-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_micros(1_632_647_727_243_860).to_string(),
            "2021-09-26T09:15:27.243860Z"
        );
    }

    #[test]
    fn printing_then_parsing_round_trips_across_the_calendar() {
        // Steps of a prime number of seconds visit every month, leap day and
        // time of day over the whole supported range.
        let start = chrono_micros(0, 1, 1, 0, 0, 0, 0);
        let end = chrono_micros(9999, 12, 31, 23, 59, 59, 999_999);
        let step = 7_919 * 3_600 * MICROS_PER_SECOND + 123_457;
        let mut t = start;
        while t <= end {
            let ts = Timestamp::from_micros(t);
            let text = ts.to_rfc3339();
            assert_eq!(p(&text), Ok(ts), "{text}");
            let reference = ts.to_datetime().expect("in chrono range");
            assert_eq!(text, reference.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            t += step;
        }
    }

    #[test]
    fn serde_uses_rfc3339_and_the_parser() {
        let ts = Timestamp::from_micros(1_632_647_727_243_860);
        let json = serde_json::to_string(&ts).expect("serialize");
        assert_eq!(json, "\"2021-09-26T09:15:27.243860Z\"");
        let back: Timestamp =
            serde_json::from_str("\"2021-09-26 09:15:27.24386\"").expect("deserialize");
        assert_eq!(back, ts);
        assert!(serde_json::from_str::<Timestamp>("\"2021-02-30 00:00:00\"").is_err());
    }

    #[test]
    fn chrono_conversions_and_arithmetic() {
        let ts = Timestamp::from_micros(1_632_647_727_243_860);
        let dt = ts.to_datetime().expect("in range");
        assert_eq!(Timestamp::from_datetime(dt), ts);
        assert_eq!(
            ts.saturating_add(Duration::from_micros(5)).as_micros(),
            ts.as_micros() + 5
        );
        assert_eq!(
            ts.saturating_sub(Duration::from_secs(1)).as_micros(),
            ts.as_micros() - 1_000_000
        );
        assert_eq!(
            Timestamp::from_micros(i64::MAX).saturating_add(Duration::MAX),
            Timestamp::from_micros(i64::MAX)
        );
        let now = Timestamp::now();
        assert!(now > p("2024-01-01 00:00:00").expect("parses"));
    }
}
