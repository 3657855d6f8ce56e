//! The configuration tables of docs/operations.md (made by
//! deploy/config_table.sh from each binary's --help) list exactly the options
//! of eye-gateway, eye-consumer and eye-query, with their environment
//! variables and defaults, so the operators' page never drifts from the code.
//! The command lines come from the same function the binaries' `main` uses
//! (`eye_server_kit::service::command`); the query service's tests hold all
//! three crates as (dev-)dependencies, hence the test lives here.

use std::collections::BTreeMap;

/// One documented option: the environment variable and the default, as the
/// table shows them (`—` for none, `(empty)` for an empty default).
#[derive(Debug, PartialEq, Eq)]
struct Row {
    env: String,
    default: String,
}

/// The options of `command` that --help shows, by long flag.
fn actual(command: clap::Command) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    for arg in command.get_arguments() {
        if arg.is_hide_set() {
            continue;
        }
        let Some(long) = arg.get_long() else {
            continue;
        };
        if matches!(long, "help" | "version") {
            continue;
        }
        let env = arg
            .get_env()
            .map_or_else(|| "—".to_owned(), |e| e.to_string_lossy().into_owned());
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = match defaults.as_slice() {
            [] => "—".to_owned(),
            [one] if one.is_empty() => "(empty)".to_owned(),
            many => many.join(","),
        };
        rows.insert(format!("--{long}"), Row { env, default });
    }
    rows
}

/// The table under the heading "### `binary`" of `doc`, by flag.
fn documented(doc: &str, binary: &str) -> BTreeMap<String, Row> {
    let heading = format!("### `{binary}`");
    let start = doc
        .lines()
        .position(|line| line.trim() == heading)
        .unwrap_or_else(|| panic!("docs/operations.md has no heading {heading}"));
    let mut rows = BTreeMap::new();
    for line in doc.lines().skip(start + 1) {
        if line.starts_with('#') {
            break;
        }
        let Some(rest) = line.strip_prefix("| `--") else {
            continue;
        };
        // "| `--flag <VALUE>` | `ENV` | `default` | text |"
        let cells: Vec<&str> = rest.split(" | ").collect();
        assert!(cells.len() >= 4, "a malformed row under {heading}: {line}");
        let flag = format!(
            "--{}",
            cells[0]
                .trim_end_matches('`')
                .split_whitespace()
                .next()
                .unwrap_or_default()
        );
        let unquote = |cell: &str| cell.trim().trim_matches('`').to_owned();
        let row = Row {
            env: unquote(cells[1]),
            default: unquote(cells[2]),
        };
        assert!(
            rows.insert(flag.clone(), row).is_none(),
            "{flag} is listed twice under {heading}"
        );
    }
    rows
}

/// The differences between the documented and the actual options, one line each.
fn differences(documented: &BTreeMap<String, Row>, actual: &BTreeMap<String, Row>) -> Vec<String> {
    let mut out = Vec::new();
    for (flag, row) in actual {
        match documented.get(flag) {
            None => out.push(format!("{flag} is not documented (code: {row:?})")),
            Some(doc) if doc != row => out.push(format!("{flag}: doc {doc:?}, code {row:?}")),
            Some(_) => {}
        }
    }
    for flag in documented.keys().filter(|f| !actual.contains_key(*f)) {
        out.push(format!(
            "{flag} is documented but is no option of the binary"
        ));
    }
    out
}

fn check(doc: &str, binary: &str, command: clap::Command) {
    let actual = actual(command);
    assert!(!actual.is_empty(), "{binary} has no options?");
    let differences = differences(&documented(doc, binary), &actual);
    assert!(
        differences.is_empty(),
        "the table of {binary} in docs/operations.md differs from its command line; \
         regenerate it: deploy/config_table.sh --update docs/operations.md <the binaries>\n{}",
        differences.join("\n")
    );
}

#[test]
fn the_configuration_tables_match_every_binarys_command_line() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    let doc = std::fs::read_to_string(path).expect("docs/operations.md");
    check(
        &doc,
        ingest_gateway::BINARY,
        eye_server_kit::service::command::<ingest_gateway::Config>(
            ingest_gateway::BINARY,
            ingest_gateway::ABOUT,
        ),
    );
    check(
        &doc,
        consumer::BINARY,
        eye_server_kit::service::command::<consumer::Config>(consumer::BINARY, consumer::ABOUT),
    );
    check(
        &doc,
        query_service::BINARY,
        eye_server_kit::service::command::<query_service::Config>(
            query_service::BINARY,
            query_service::ABOUT,
        ),
    );
}

#[test]
fn the_table_parser_reads_the_generated_layout() {
    let doc = "### `x`\n\n| flag | variable | default | description |\n|---|---|---|---|\n\
               | `--listen <LISTEN>` | `EYE_X_LISTEN` | `127.0.0.1:1` | Where. |\n\
               | `--age <DURATION>` | `EYE_AGE` | — | Any \\| age. |\n\
               | `--password <PASSWORD>` | `EYE_PW` | (empty) | Secret. |\n\n### `y`\n\
               | `--other` | — | — | Not x's. |\n";
    let rows = documented(doc, "x");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows["--listen"],
        Row {
            env: "EYE_X_LISTEN".into(),
            default: "127.0.0.1:1".into()
        }
    );
    assert_eq!(rows["--age"].default, "—");
    assert_eq!(rows["--password"].default, "(empty)");
}
