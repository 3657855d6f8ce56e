//! `eye-consumer replay`: re-runs stored rejects and dead letters through
//! validation (typically after a schema was fixed) and stores those that pass
//! now, exactly once.
//!
//! The rules:
//! - **Input.** Rows of `event_errors` (rejects of the gateway and of the
//!   consumer, and dead letters, which the consumer records there too with
//!   codes such as `storage_failed`), filtered by received time, code, client
//!   and category ([`filter`]). The raw body kept with a reject is the event;
//!   a body that was cut (`raw_truncated`) cannot be replayed and is reported
//!   so ([`judge`]).
//! - **Same verdict as the consumer.** The event is validated with the
//!   consumer's schemas, time rules and limits, as if received at the time it
//!   was first received, by the client recorded with the reject.
//! - **Exactly once.** The event id is the one the pipeline gives: the
//!   event's own `event_id`, or the contract's id derived from the client and
//!   the content. Ids already in `events` are not inserted again (a second
//!   replay stores nothing), and a copy inserted by two replays at once is the
//!   same row, which `ReplacingMergeTree` and readers' `FINAL` fold into one.
//! - **History stays.** The `event_errors` rows are left as they are: they
//!   record what happened. The report lists which rejects passed and where
//!   their events are; a later replay reports them as already stored.

pub mod filter;
pub mod judge;
pub mod report;

use std::collections::HashSet;
use std::process::ExitCode;

use eye_contract::Timestamp;
use serde::Deserialize;

pub use filter::{Filter, FilterError, ReplayArgs};
pub use judge::{judge, Candidate, NotReplayable, Verdict};
pub use report::{Fate, Replayed, Report};

use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::rows::EventRow;
use crate::sql;
use crate::store::Store;

/// The binary's one-shot subcommands (besides `healthcheck`).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Tool {
    /// Re-validate stored rejects and dead letters (event_errors) with the
    /// current schemas and store those that pass now, exactly once; print how
    /// many passed and why the rest still fail. The consumer's options
    /// (--schemas-dir, --clickhouse-*, time rules and limits) go before
    /// `replay`, or in their environment variables. Exit status 0 when the
    /// replay ran (whatever the verdicts), non-zero when it could not (it is
    /// always safe to run again).
    Replay(ReplayArgs),
}

impl Tool {
    /// Runs the subcommand, printing its report on standard output.
    pub async fn run(self, config: Config) -> ExitCode {
        match self {
            Tool::Replay(args) => match replay(&config, &args).await {
                Ok(report) => {
                    if args.json {
                        match serde_json::to_string(&report) {
                            Ok(json) => println!("{json}"),
                            Err(error) => {
                                tracing::error!(%error, "cannot write the report as JSON");
                                return ExitCode::FAILURE;
                            }
                        }
                    } else {
                        print!("{report}");
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    tracing::error!(%error, "replay failed");
                    ExitCode::FAILURE
                }
            },
        }
    }
}

/// Why a replay could not run or stopped. Rejects stored before the error stay
/// stored; running the replay again is safe.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Settings that cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Flags that cannot work.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The schemas could not be loaded.
    #[error("cannot load the event schemas: {0}")]
    Schemas(#[from] eye_contract::RegistryError),
    /// Reading `event_errors` or `events` failed.
    #[error("cannot read {what} from ClickHouse: {source}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The client's error.
        source: clickhouse::error::Error,
    },
    /// ClickHouse could not be reached while inserting.
    #[error("cannot insert replayed events: ClickHouse is unavailable: {0}")]
    Insert(String),
}

/// Replays the rejects `args` selects, with the consumer's `config` (schemas,
/// time rules, limits, ClickHouse): see the module documentation.
pub async fn replay(config: &Config, args: &ReplayArgs) -> Result<Report, ReplayError> {
    config.check()?;
    let filter = Filter::new(args, Timestamp::now())?;
    let validator = crate::validator(config)?;
    let client = eye_server_kit::clickhouse::client(&config.clickhouse.config());
    // A registry of its own: a one-shot command exports no metrics.
    let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
    let store = Store::new(client.clone(), config.pipeline.insert_timeout, metrics);
    tracing::info!(?filter, dry_run = args.dry_run, "replaying rejects");

    let mut report = Report::new(filter.clone(), args.dry_run);
    // Events stored (or to be stored) by this run: a second reject of the
    // same event is then "already stored" without asking ClickHouse.
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut after: (i64, String) = (filter.from_us - 1, String::new());
    loop {
        let page = candidates(&client, &filter, &after, args.page_size).await?;
        let Some(last) = page.last() else { break };
        after = (last.received_us, last.reject_id.clone());
        report.examined += page.len() as u64;

        let mut passing: Vec<(Candidate, EventRow)> = Vec::new();
        for candidate in page {
            match judge(&candidate, &validator) {
                Verdict::Passes(row) => passing.push((candidate, *row)),
                Verdict::StillFails(error) => {
                    report.fails(error.code.as_str(), &candidate.reject_id, &error.message);
                }
                Verdict::NotReplayable(why) => {
                    report.skips(why.label(), &candidate.reject_id, &why.reason());
                }
            }
        }
        let stored = stored_ids(&client, &passing).await?;
        let mut to_insert: Vec<(usize, EventRow)> = Vec::new();
        let mut fates: Vec<Option<Fate>> = Vec::with_capacity(passing.len());
        for (i, (_, row)) in passing.iter().enumerate() {
            let key = (row.client_id.clone(), row.event_id.clone());
            if stored.contains(&key) || !seen.insert(key) {
                fates.push(Some(Fate::AlreadyStored));
            } else if args.dry_run {
                fates.push(Some(Fate::WouldStore));
            } else {
                to_insert.push((i, row.clone()));
                fates.push(Some(Fate::Stored));
            }
        }
        let refused = store
            .insert_isolating("events", &to_insert)
            .await
            .map_err(ReplayError::Insert)?;
        for (i, reason) in refused {
            if let (Some(fate), Some((candidate, row))) = (fates.get_mut(i), passing.get(i)) {
                *fate = None;
                seen.remove(&(row.client_id.clone(), row.event_id.clone()));
                let message = format!("ClickHouse refused the event: {reason}");
                report.fails(
                    eye_contract::ErrorCode::StorageFailed.as_str(),
                    &candidate.reject_id,
                    &message,
                );
            }
        }
        for ((candidate, row), fate) in passing.into_iter().zip(fates) {
            let Some(fate) = fate else { continue };
            tracing::debug!(reject_id = %candidate.reject_id, event_id = %row.event_id, ?fate, "replayed");
            report.passes(Replayed {
                reject_id: candidate.reject_id,
                code: candidate.code,
                client_id: row.client_id,
                event_id: row.event_id,
                fate,
            });
        }
    }
    tracing::info!(
        examined = report.examined,
        stored = report.stored,
        already_stored = report.already_stored,
        still_failing = report.failing(),
        "replay done"
    );
    Ok(report)
}

/// One page of rejects after the key `after`.
async fn candidates(
    client: &clickhouse::Client,
    filter: &Filter,
    after: &(i64, String),
    page_size: u32,
) -> Result<Vec<Candidate>, ReplayError> {
    let (from_s, to_s) = filter.seconds();
    client
        .query(&sql::statement(sql::REPLAY_CANDIDATES))
        .bind(from_s)
        .bind(to_s)
        .bind(filter.from_us)
        .bind(filter.to_us)
        .bind(&filter.codes)
        .bind(&filter.codes)
        .bind(&filter.clients)
        .bind(&filter.clients)
        .bind(&filter.categories)
        .bind(&filter.categories)
        .bind(after.0)
        .bind(after.0)
        .bind(after.1.as_str())
        .bind(page_size)
        .fetch_all::<Candidate>()
        .await
        .map_err(|source| ReplayError::Read {
            what: "rejects (event_errors)",
            source,
        })
}

/// A row of `consumer/sql/replay_stored.sql`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct StoredId {
    client_id: String,
    event_id: String,
}

/// The `(client_id, event_id)` of `passing` that `events` holds already.
async fn stored_ids(
    client: &clickhouse::Client,
    passing: &[(Candidate, EventRow)],
) -> Result<HashSet<(String, String)>, ReplayError> {
    if passing.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = passing
        .iter()
        .map(|(_, row)| row.event_id.as_str())
        .collect();
    let rows = client
        .query(&sql::statement(sql::REPLAY_STORED))
        .bind(ids)
        .fetch_all::<StoredId>()
        .await
        .map_err(|source| ReplayError::Read {
            what: "stored event ids (events)",
            source,
        })?;
    Ok(rows
        .into_iter()
        .map(|row| (row.client_id, row.event_id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    #[test]
    fn the_command_line_with_replay_is_well_formed() {
        let command = eye_server_kit::service::command_with_tools::<Config, Tool>(
            crate::BINARY,
            crate::ABOUT,
        );
        command.clone().debug_assert();
        let matches = command
            .try_get_matches_from([
                "eye-consumer",
                "--clickhouse-database",
                "eye_x",
                "replay",
                "--code",
                "schema_violation",
                "--client",
                "demo",
                "--dry-run",
            ])
            .expect("parses");
        let config = Config::from_arg_matches(&matches).expect("config");
        assert_eq!(config.clickhouse.database, "eye_x");
        let Tool::Replay(args) = Tool::from_arg_matches(&matches).expect("tool");
        assert!(args.dry_run);
        assert_eq!(args.clients, ["demo"]);
    }
}
