//! Bulk inserts into ClickHouse, and what a failed insert means.
//!
//! Two kinds of failure, handled differently by the pipeline:
//! - **unavailable** — no answer, a network error, a timeout, or an error
//!   while `SELECT 1` fails too: ClickHouse is down or overloaded. The batch
//!   is kept and retried as a whole; no message is blamed.
//! - **refused** — ClickHouse answered the INSERT with an error while it
//!   answers `SELECT 1`: something in the rows is wrong for it. The rows are
//!   split in halves and retried until the refused rows are found (a batch of
//!   `n` rows with one bad row costs about `2·log2(n)` extra inserts), so one
//!   bad row never holds back its neighbours.

use std::time::{Duration, Instant};

use clickhouse::{Client, RowOwned, RowWrite};

use crate::metrics::{FailureLabel, Metrics, TableLabel};

/// Why an INSERT failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertFailure {
    /// ClickHouse cannot be reached or did not answer in time.
    Unavailable(String),
    /// ClickHouse answered and refused the rows.
    Refused(String),
}

/// Inserts rows, with the client, the timeout and the metrics they need.
#[derive(Clone)]
pub struct Store {
    client: Client,
    insert_timeout: Duration,
    metrics: Metrics,
}

impl Store {
    /// A store writing through `client`.
    pub fn new(client: Client, insert_timeout: Duration, metrics: Metrics) -> Store {
        Store {
            client,
            insert_timeout,
            metrics,
        }
    }

    /// One INSERT of `rows` into `table`; `Ok` once ClickHouse confirmed it.
    pub async fn insert<R>(&self, table: &'static str, rows: &[&R]) -> Result<(), InsertFailure>
    where
        R: RowOwned + RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let attempt = async {
            let mut insert = self
                .client
                .insert::<R>(table)
                .await?
                .with_timeouts(Some(self.insert_timeout), Some(self.insert_timeout));
            for row in rows {
                insert.write(*row).await?;
            }
            insert.end().await
        };
        let outcome = match tokio::time::timeout(self.insert_timeout, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(clickhouse::error::Error::BadResponse(message))) => {
                // An error answer from a server that is otherwise fine blames the
                // rows; one from a server that cannot run `SELECT 1` does not.
                if self.reachable().await {
                    Err(InsertFailure::Refused(message))
                } else {
                    Err(InsertFailure::Unavailable(message))
                }
            }
            Ok(Err(error)) => Err(InsertFailure::Unavailable(error.to_string())),
            Err(_) => Err(InsertFailure::Unavailable(format!(
                "no answer within {:?}",
                self.insert_timeout
            ))),
        };
        self.metrics
            .insert_duration
            .get_or_create(&TableLabel { table })
            .observe(started.elapsed().as_secs_f64());
        if let Err(failure) = &outcome {
            let kind = match failure {
                InsertFailure::Unavailable(_) => "unavailable",
                InsertFailure::Refused(_) => "refused",
            };
            self.metrics
                .insert_failures
                .get_or_create(&FailureLabel { kind })
                .inc();
        }
        outcome
    }

    /// Inserts `rows` (each tagged with the caller's index). If ClickHouse
    /// refuses them, finds the refused rows by halving, stores the rest, and
    /// returns the refused rows' tags with ClickHouse's reason. Fails only when
    /// ClickHouse is unavailable (some halves may be stored by then: the
    /// caller retries everything, and the copies are deduplicated).
    pub async fn insert_isolating<R>(
        &self,
        table: &'static str,
        rows: &[(usize, R)],
    ) -> Result<Vec<(usize, String)>, String>
    where
        R: RowOwned + RowWrite,
    {
        let mut refused = Vec::new();
        // Ranges still to insert; a stack instead of recursion (async recursion
        // needs boxing, and the depth is only log2 of the batch).
        let mut todo: Vec<std::ops::Range<usize>> = Vec::new();
        todo.push(0..rows.len());
        while let Some(range) = todo.pop() {
            if range.is_empty() {
                continue;
            }
            let slice: Vec<&R> = rows[range.clone()].iter().map(|(_, row)| row).collect();
            match self.insert(table, &slice).await {
                Ok(()) => {}
                Err(InsertFailure::Unavailable(reason)) => return Err(reason),
                Err(InsertFailure::Refused(reason)) if range.len() == 1 => {
                    refused.push((rows[range.start].0, reason));
                }
                Err(InsertFailure::Refused(_)) => {
                    let middle = range.start + range.len() / 2;
                    todo.push(middle..range.end);
                    todo.push(range.start..middle);
                }
            }
        }
        Ok(refused)
    }

    async fn reachable(&self) -> bool {
        let ping = self.client.query("SELECT 1").fetch_one::<u8>();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), ping).await,
            Ok(Ok(1))
        )
    }
}
