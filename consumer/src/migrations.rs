//! The ClickHouse schema: the versioned files of `migrations/`, embedded in the
//! binary, applied in order at start-up and recorded in `schema_migrations`.
//!
//! The rules:
//! - **Idempotent.** Every statement is `IF NOT EXISTS`, so applying a
//!   migration twice changes nothing. That is what makes two consumers starting
//!   at once safe without a lock (ClickHouse has none to offer): both may apply
//!   the same migration and both may record it; the copies collapse
//!   (`ReplacingMergeTree`, read with `FINAL`). A statement that loses a race
//!   on an old server ("already exists" between the check and the create) is
//!   simply run again.
//! - **Immutable once applied.** Each recorded migration keeps the SHA-256 of
//!   its file; a recorded checksum that differs from the embedded file stops
//!   the start-up with an error naming the file. Change the schema with a new
//!   file, never by editing an applied one.
//! - **Embedded.** The files are compiled in ([`MIGRATIONS`]), so the binary
//!   needs nothing beside it; a test keeps the list equal to the directory.

use std::time::Duration;

use clickhouse::Client;
use sha2::{Digest, Sha256};

use crate::sql;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number, the `NNNN` of `NNNN_name.sql`.
    pub version: u32,
    /// The file name without `.sql`, e.g. `0001_events`.
    pub name: &'static str,
    /// The file's contents.
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../migrations/", $name, ".sql")),
        }
    };
}

/// Every migration, in the order they are applied.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_events"),
    migration!(2, "0002_event_errors"),
    migration!(3, "0003_events_by_category"),
];

/// How often a failing statement is tried before the migration fails.
const STATEMENT_ATTEMPTS: u32 = 3;
/// Pause between two tries of a statement.
const STATEMENT_RETRY_PAUSE: Duration = Duration::from_millis(200);

impl Migration {
    /// The file name, e.g. `0001_events.sql`, for messages.
    pub fn file(&self) -> String {
        format!("migrations/{}.sql", self.name)
    }

    /// Lowercase hex SHA-256 of the file.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// A statement failed (ClickHouse unreachable, or it refused the statement).
    #[error("{file}: statement {index} failed: {source}")]
    Statement {
        /// The migration file, or the consumer's own SQL file.
        file: String,
        /// 1-based position of the statement in the file.
        index: usize,
        /// ClickHouse's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// A migration already applied differs from the file in this binary.
    #[error("{file} was changed after it was applied: recorded checksum {recorded}, this binary has {embedded}; add a new migration instead of editing an applied one")]
    Checksum {
        /// The migration file.
        file: String,
        /// The checksum in `schema_migrations`.
        recorded: String,
        /// The checksum of the embedded file.
        embedded: String,
    },
}

impl MigrationError {
    /// True when retrying later cannot help (the files or the schema are wrong).
    pub fn is_permanent(&self) -> bool {
        matches!(self, MigrationError::Checksum { .. })
    }
}

/// A recorded migration.
#[derive(Debug, Clone, clickhouse::Row, serde::Serialize, serde::Deserialize)]
pub struct AppliedMigration {
    /// Its version.
    pub version: u32,
    /// Its name.
    pub name: String,
    /// SHA-256 of its file when it was applied.
    pub checksum: String,
}

#[derive(Debug, clickhouse::Row, serde::Serialize)]
struct MigrationRecord<'a> {
    version: u32,
    name: &'a str,
    checksum: &'a str,
    /// `DateTime('UTC')`: seconds since the epoch.
    applied_at: u32,
}

/// True when `name` is a ClickHouse identifier that needs no quoting.
pub fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Creates `database` if missing and applies every migration it lacks, with
/// `client` pointed at that database. Returns the versions it applied.
pub async fn migrate(client: &Client, database: &str) -> Result<Vec<u32>, MigrationError> {
    // The database may not exist yet, so this statement runs in `default`.
    let create_database = sql::statement(sql::CREATE_DATABASE).replace("{database}", database);
    run_statement(
        &client.clone().with_database("default"),
        "consumer/sql/create_database.sql",
        1,
        &create_database,
    )
    .await?;
    run_statement(
        client,
        "consumer/sql/create_schema_migrations.sql",
        1,
        &sql::statement(sql::CREATE_SCHEMA_MIGRATIONS),
    )
    .await?;

    let applied = applied(client).await?;
    check_checksums(&applied)?;
    let mut done = Vec::new();
    for migration in MIGRATIONS {
        if applied.iter().any(|a| a.version == migration.version) {
            continue;
        }
        apply(client, migration).await?;
        done.push(migration.version);
        tracing::info!(file = %migration.file(), "applied migration");
    }
    Ok(done)
}

/// The migrations recorded in `schema_migrations`.
pub async fn applied(client: &Client) -> Result<Vec<AppliedMigration>, MigrationError> {
    client
        .query(&sql::statement(sql::APPLIED_MIGRATIONS))
        .fetch_all::<AppliedMigration>()
        .await
        .map_err(|source| MigrationError::Statement {
            file: "consumer/sql/applied_migrations.sql".to_owned(),
            index: 1,
            source,
        })
}

fn check_checksums(applied: &[AppliedMigration]) -> Result<(), MigrationError> {
    for recorded in applied {
        match MIGRATIONS.iter().find(|m| m.version == recorded.version) {
            Some(migration) if migration.checksum() != recorded.checksum => {
                return Err(MigrationError::Checksum {
                    file: migration.file(),
                    recorded: recorded.checksum.clone(),
                    embedded: migration.checksum(),
                });
            }
            Some(_) => {}
            // A newer binary applied it (a rolling upgrade): the schema is
            // ahead of this binary, which is fine while migrations only add.
            None => tracing::warn!(
                version = recorded.version,
                name = %recorded.name,
                "the schema has a migration this binary does not know"
            ),
        }
    }
    Ok(())
}

async fn apply(client: &Client, migration: &Migration) -> Result<(), MigrationError> {
    for (i, statement) in sql::statements(migration.sql).iter().enumerate() {
        run_statement(client, &migration.file(), i + 1, statement).await?;
    }
    let checksum = migration.checksum();
    let record = MigrationRecord {
        version: migration.version,
        name: migration.name,
        checksum: &checksum,
        applied_at: u32::try_from(eye_contract::Timestamp::now().as_micros() / 1_000_000)
            .unwrap_or(0),
    };
    let recorded = async {
        let mut insert = client
            .insert::<MigrationRecord<'_>>("schema_migrations")
            .await?;
        insert.write(&record).await?;
        insert.end().await
    };
    recorded.await.map_err(|source| MigrationError::Statement {
        file: "consumer/sql/insert_schema_migrations.sql".to_owned(),
        index: 1,
        source,
    })
}

/// Runs one idempotent statement, trying again after a short pause if it
/// fails (a lost `IF NOT EXISTS` race on an old server succeeds the second time).
async fn run_statement(
    client: &Client,
    file: &str,
    index: usize,
    statement: &str,
) -> Result<(), MigrationError> {
    let mut attempt = 1;
    loop {
        // `query_raw`: DDL has no binds, and a `?` in it must reach the server as is.
        match client.query_raw(statement).execute().await {
            Ok(()) => return Ok(()),
            Err(source) if attempt >= STATEMENT_ATTEMPTS => {
                return Err(MigrationError::Statement {
                    file: file.to_owned(),
                    index,
                    source,
                })
            }
            Err(error) => {
                tracing::debug!(%file, index, %error, "statement failed, trying again");
                attempt += 1;
                tokio::time::sleep(STATEMENT_RETRY_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_matches_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations directory")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(
            files, listed,
            "every file in migrations/ must be listed in MIGRATIONS, in order"
        );
    }

    #[test]
    fn versions_follow_the_file_names_in_order() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            let expected = u32::try_from(i + 1).expect("few migrations");
            assert_eq!(migration.version, expected, "{}", migration.name);
            assert!(
                migration.name.starts_with(&format!("{expected:04}_")),
                "{} must start with {expected:04}_",
                migration.name
            );
            assert!(
                !sql::statements(migration.sql).is_empty(),
                "{}",
                migration.name
            );
        }
    }

    #[test]
    fn every_statement_is_idempotent() {
        for migration in MIGRATIONS {
            for statement in sql::statements(migration.sql) {
                assert!(
                    statement.contains("IF NOT EXISTS"),
                    "{}: not idempotent: {statement}",
                    migration.name
                );
            }
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("eye"));
        assert!(is_identifier("_eye_2"));
        assert!(!is_identifier("2eye"));
        assert!(!is_identifier("eye-db"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("a;b"));
    }

    #[test]
    fn checksums_are_stable_hex() {
        let checksum = MIGRATIONS[0].checksum();
        assert_eq!(checksum.len(), 64);
        assert_eq!(checksum, MIGRATIONS[0].checksum());
    }
}
