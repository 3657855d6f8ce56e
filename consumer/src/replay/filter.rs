//! The flags of `eye-consumer replay` and the filter they make: which stored
//! rejects to re-validate. Every value is checked here, before anything is
//! read, and later bound into `consumer/sql/replay_candidates.sql`.

use eye_contract::{validate_client_id, ErrorCode, Timestamp};

/// Codes whose rejects are never replayed, and why: the verdict did not come
/// from the validation a replay repeats, so a replay would overrule it.
pub const NEVER_REPLAYED: [(ErrorCode, &str); 2] = [
    (
        ErrorCode::CategoryNotAllowed,
        "an authorization decision of the gateway (the client's category allow-list), not a validation",
    ),
    (
        ErrorCode::InvalidSubject,
        "the NATS subject was wrong, and event_errors does not keep the subject",
    ),
];

/// The flags of `eye-consumer replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Replay rejects received at or after this time (`YYYY-MM-DD HH:MM:SS[.f]`
    /// in UTC, or RFC 3339). Default: the oldest.
    #[arg(long, env = "EYE_REPLAY_FROM", value_parser = parse_time, value_name = "TIME")]
    pub from: Option<Timestamp>,
    /// Replay rejects received before this time (same formats). Default: the
    /// time the replay starts, so rejects arriving meanwhile are left alone.
    #[arg(long, env = "EYE_REPLAY_TO", value_parser = parse_time, value_name = "TIME")]
    pub to: Option<Timestamp>,
    /// Only rejects with this error code (e.g. schema_violation, storage_failed);
    /// repeat the flag or separate codes with commas. Default: every code but
    /// category_not_allowed and invalid_subject, which are never replayed.
    #[arg(long = "code", env = "EYE_REPLAY_CODE", value_delimiter = ',', value_parser = parse_code, value_name = "CODE")]
    pub codes: Vec<ErrorCode>,
    /// Only rejects of this client; repeat or separate with commas. Default: every client.
    #[arg(long = "client", env = "EYE_REPLAY_CLIENT", value_delimiter = ',', value_parser = parse_client, value_name = "CLIENT")]
    pub clients: Vec<String>,
    /// Only rejects whose event names this category; repeat or separate with
    /// commas. Default: every category.
    #[arg(long = "category", env = "EYE_REPLAY_CATEGORY", value_delimiter = ',', value_parser = parse_category, value_name = "CATEGORY")]
    pub categories: Vec<String>,
    /// Re-validate and report what would be stored, but store nothing.
    #[arg(long, env = "EYE_REPLAY_DRY_RUN")]
    pub dry_run: bool,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Rejects read from ClickHouse, and events inserted, per page.
    #[arg(long, env = "EYE_REPLAY_PAGE_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N")]
    pub page_size: u32,
}

/// Flags that cannot work together.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// An empty or inverted time range.
    #[error("--from ({from}) must be before --to ({to})")]
    EmptyRange {
        /// The lower bound.
        from: Timestamp,
        /// The upper bound.
        to: Timestamp,
    },
}

/// What to replay, checked: `[from_us, to_us)` of the rejects' received time,
/// and lists that are empty when any value goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Filter {
    /// Lower bound of `received_us`, inclusive; never before 1970.
    pub from_us: i64,
    /// Upper bound of `received_us`, exclusive.
    pub to_us: i64,
    /// Codes (their `as_str` spelling), or empty.
    pub codes: Vec<String>,
    /// Clients, or empty.
    pub clients: Vec<String>,
    /// Categories, or empty.
    pub categories: Vec<String>,
}

impl Filter {
    /// The filter of `args`, with `now` as the default end of the range.
    pub fn new(args: &ReplayArgs, now: Timestamp) -> Result<Filter, FilterError> {
        let from = args.from.unwrap_or(Timestamp::from_micros(0));
        let to = args.to.unwrap_or(now);
        if from >= to {
            return Err(FilterError::EmptyRange { from, to });
        }
        let mut codes: Vec<String> = args.codes.iter().map(|c| c.as_str().to_owned()).collect();
        codes.sort();
        codes.dedup();
        Ok(Filter {
            from_us: from.as_micros().max(0),
            to_us: to.as_micros(),
            codes,
            clients: sorted(&args.clients),
            categories: sorted(&args.categories),
        })
    }

    /// `received_at` (whole seconds, `DateTime` range) bounds covering the
    /// range, so ClickHouse reads only the partitions that can match.
    pub fn seconds(&self) -> (u32, u32) {
        let clamp = |s: i64| u32::try_from(s.clamp(0, i64::from(u32::MAX))).unwrap_or(u32::MAX);
        let from = self.from_us.div_euclid(1_000_000);
        // The last second holding a matching microsecond, plus one (exclusive).
        let to = (self.to_us - 1).div_euclid(1_000_000) + 1;
        (clamp(from), clamp(to))
    }
}

fn sorted(values: &[String]) -> Vec<String> {
    let mut values = values.to_vec();
    values.sort();
    values.dedup();
    values
}

/// `--from` / `--to`: the event timestamp formats.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).map_err(|error| error.to_string())
}

/// `--code`: an error code that can be replayed.
pub fn parse_code(text: &str) -> Result<ErrorCode, String> {
    let code = ErrorCode::ALL
        .into_iter()
        .find(|code| code.as_str() == text)
        .ok_or_else(|| {
            let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
            format!(
                "unknown error code {text:?}; codes are {}",
                known.join(", ")
            )
        })?;
    match NEVER_REPLAYED.iter().find(|(never, _)| *never == code) {
        Some((_, why)) => Err(format!("{text} rejects are never replayed: {why}")),
        None => Ok(code),
    }
}

/// `--client`: a valid client id.
pub fn parse_client(text: &str) -> Result<String, String> {
    validate_client_id(text)
        .map(|()| text.to_owned())
        .map_err(|error| format!("{text:?} is not a client id: {error}"))
}

/// `--category`: any non-blank text (a reject keeps the category as sent).
pub fn parse_category(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("a category cannot be blank".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_testkit::service::parse_config;

    const NOW: i64 = 1_700_000_000_000_000;

    fn filter(args: &[&str]) -> Result<Filter, FilterError> {
        Filter::new(
            &parse_config::<ReplayArgs>(args),
            Timestamp::from_micros(NOW),
        )
    }

    #[test]
    fn defaults_replay_everything_received_until_now() {
        let f = filter(&[]).expect("valid");
        assert_eq!((f.from_us, f.to_us), (0, NOW));
        assert!(f.codes.is_empty() && f.clients.is_empty() && f.categories.is_empty());
        let args = parse_config::<ReplayArgs>(&[]);
        assert!(!args.dry_run && !args.json);
        assert_eq!(args.page_size, 1000);
    }

    #[test]
    fn times_take_the_event_formats_and_rfc3339() {
        let f = filter(&[
            "--from",
            "2021-09-26 09:15:27.243860",
            "--to",
            "2021-09-26T11:15:28+02:00",
        ])
        .expect("valid");
        assert_eq!(f.from_us, 1_632_647_727_243_860);
        assert_eq!(f.to_us, 1_632_647_728_000_000);
        assert_eq!(f.seconds(), (1_632_647_727, 1_632_647_728));
        assert!(parse_time("yesterday").is_err());
        assert!(matches!(
            filter(&[
                "--from",
                "2021-09-26 10:00:00",
                "--to",
                "2021-09-26 10:00:00"
            ]),
            Err(FilterError::EmptyRange { .. })
        ));
    }

    #[test]
    fn seconds_cover_a_partial_last_second() {
        let f = filter(&[
            "--from",
            "1970-01-01 00:00:01.5",
            "--to",
            "1970-01-01 00:00:03.000001",
        ])
        .expect("valid");
        assert_eq!(f.seconds(), (1, 4));
    }

    #[test]
    fn lists_are_repeatable_comma_separated_and_deduplicated() {
        let f = filter(&[
            "--code",
            "schema_violation,storage_failed",
            "--code",
            "schema_violation",
            "--client",
            "demo",
            "--client",
            "other,demo",
            "--category",
            "page interaction",
        ])
        .expect("valid");
        assert_eq!(f.codes, ["schema_violation", "storage_failed"]);
        assert_eq!(f.clients, ["demo", "other"]);
        assert_eq!(f.categories, ["page interaction"]);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let error = parse_code("nope").unwrap_err();
        assert!(error.contains("schema_violation"), "{error}");
        for never in ["category_not_allowed", "invalid_subject"] {
            let error = parse_code(never).unwrap_err();
            assert!(error.contains("never replayed"), "{error}");
        }
        assert_eq!(
            parse_code("timestamp_in_future"),
            Ok(ErrorCode::TimestampInFuture)
        );
        assert!(parse_client("a.b").is_err());
        assert!(parse_client("").is_err());
        assert!(parse_category("  ").is_err());

        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ReplayArgs,
        }
        let refused = Wrapper::command()
            .no_binary_name(true)
            .try_get_matches_from(["--code", "invalid_subject"])
            .map(|m| Wrapper::from_arg_matches(&m).is_ok());
        assert!(refused.is_err(), "clap refuses the flag");
    }
}
