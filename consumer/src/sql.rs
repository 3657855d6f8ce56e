//! Every SQL statement the consumer sends, embedded from `consumer/sql/*.sql`
//! (see `consumer/sql/README.md`), and the one rule for reading SQL files:
//! lines starting with `--` are comments, a statement ends with `;` at the end
//! of a line (or at the end of the file).
//!
//! Keeping the SQL in files, not in Rust strings, lets `deploy/chdb_check.py`
//! run exactly what the consumer runs on a current ClickHouse.

/// `CREATE DATABASE IF NOT EXISTS {database}`.
pub const CREATE_DATABASE: &str = include_str!("../sql/create_database.sql");
/// The migrations bookkeeping table.
pub const CREATE_SCHEMA_MIGRATIONS: &str = include_str!("../sql/create_schema_migrations.sql");
/// The recorded migrations, by version.
pub const APPLIED_MIGRATIONS: &str = include_str!("../sql/applied_migrations.sql");
/// The columns of an INSERT into `schema_migrations`.
pub const INSERT_SCHEMA_MIGRATIONS: &str = include_str!("../sql/insert_schema_migrations.sql");
/// The columns of an INSERT into `events`.
pub const INSERT_EVENTS: &str = include_str!("../sql/insert_events.sql");
/// The columns of an INSERT into `event_errors`.
pub const INSERT_EVENT_ERRORS: &str = include_str!("../sql/insert_event_errors.sql");
/// The recommended read of one session (FINAL: each event once).
pub const READ_SESSION: &str = include_str!("../sql/read_session.sql");
/// The recommended read of a category in a time range.
pub const READ_CATEGORY: &str = include_str!("../sql/read_category.sql");
/// The recommended read of rejects in a time range.
pub const READ_ERRORS: &str = include_str!("../sql/read_errors.sql");
/// One page of the rejects `eye-consumer replay` re-validates.
pub const REPLAY_CANDIDATES: &str = include_str!("../sql/replay_candidates.sql");
/// Which of a list of event ids are stored already.
pub const REPLAY_STORED: &str = include_str!("../sql/replay_stored.sql");

/// The statements of a SQL file, comments removed, without their `;`.
pub fn statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        let trimmed = line.trim_end();
        if let Some(last) = trimmed.strip_suffix(';') {
            current.push_str(last);
            push_statement(&mut statements, &mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    push_statement(&mut statements, &mut current);
    statements
}

fn push_statement(statements: &mut Vec<String>, current: &mut String) {
    let statement = current.trim();
    if !statement.is_empty() {
        statements.push(statement.to_owned());
    }
    current.clear();
}

/// The one statement of a file such as [`READ_SESSION`].
pub fn statement(text: &str) -> String {
    statements(text).join(";\n")
}

/// The table and column list of an `insert_*.sql` file:
/// `INSERT INTO events (a, b)` gives `("events", ["a", "b"])`.
pub fn insert_columns(text: &str) -> Option<(String, Vec<String>)> {
    let statement = statement(text);
    let rest = statement.strip_prefix("INSERT INTO ")?;
    let (table, columns) = rest.split_once('(')?;
    let columns = columns.trim_end().strip_suffix(')')?;
    Some((
        table.trim().to_owned(),
        columns.split(',').map(|c| c.trim().to_owned()).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_drops_comments() {
        let text = "-- header; not a statement\nCREATE TABLE a\n(x UInt8)\nENGINE = Memory;\n\n-- next\nSELECT 1;\nSELECT 2\n";
        assert_eq!(
            statements(text),
            [
                "CREATE TABLE a\n(x UInt8)\nENGINE = Memory",
                "SELECT 1",
                "SELECT 2"
            ]
        );
        assert_eq!(statements("-- only a comment\n"), Vec::<String>::new());
    }

    #[test]
    fn every_file_is_one_statement_without_stray_binds() {
        for (text, binds) in [
            (CREATE_DATABASE, 0),
            (CREATE_SCHEMA_MIGRATIONS, 0),
            (APPLIED_MIGRATIONS, 0),
            (READ_SESSION, 1),
            (READ_CATEGORY, 3),
            (READ_ERRORS, 2),
            (REPLAY_CANDIDATES, 14),
            (REPLAY_STORED, 1),
        ] {
            assert_eq!(statements(text).len(), 1, "{text}");
            assert_eq!(statement(text).matches('?').count(), binds, "{text}");
        }
    }

    #[test]
    fn insert_files_name_their_table_and_columns() {
        let (table, columns) = insert_columns(INSERT_SCHEMA_MIGRATIONS).expect("parses");
        assert_eq!(table, "schema_migrations");
        assert_eq!(columns, ["version", "name", "checksum", "applied_at"]);
    }
}
