//! Every ```sql block of docs/sql.md runs on the harness ClickHouse (18.16)
//! as the read-only user, on sample data, and answers what it should; so the
//! analysts' page never rots.

mod common;

use common::{event, reject, T0};
use uuid::Uuid;

/// The ```sql blocks of `text`, in order.
fn sql_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sql block");
    blocks
}

#[tokio::test]
async fn every_query_of_docs_sql_md_runs_on_the_test_clickhouse() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/sql.md");
    let text = std::fs::read_to_string(path).expect("docs/sql.md");
    let blocks = sql_blocks(&text);
    assert!(
        blocks.len() >= 5,
        "docs/sql.md has {} queries",
        blocks.len()
    );

    let (database, writer) = common::database("q_sqldoc").await;
    let example = Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423").expect("uuid");
    let other = Uuid::new_v4();
    let mut rows = vec![
        event(example, "a1", "party", "Open", T0 + 243_860),
        event(example, "a2", "party", "Click", T0 + 3_600_000_000),
        event(other, "b1", "party", "Click", T0),
        event(other, "b2", "page view", "Open", T0 + 1),
    ];
    rows[0].data = r#"{"host":"www.party.com","path":"/"}"#.to_owned();
    // Stored twice, as a redelivery would: the queries must count it once.
    common::insert(&writer, &rows).await;
    common::insert(&writer, &rows).await;
    let mut insert = writer
        .insert::<consumer::rows::ErrorRow>("event_errors")
        .await
        .expect("insert");
    for row in [
        reject("r1", "demo", "invalid_timestamp", T0),
        reject("r2", "demo", "invalid_timestamp", T0 + 1),
        reject("r3", "shop", "schema_violation", T0 + 2),
    ] {
        insert.write(&row).await.expect("write");
    }
    insert.end().await.expect("insert ends");

    let reader = eye_testkit::shared_clickhouse().reader_client(&database);
    let mut answers = Vec::new();
    for (i, sql) in blocks.iter().enumerate() {
        assert!(!sql.contains('?'), "block {}: no binds in the docs", i + 1);
        let mut cursor = reader
            .query(sql)
            .fetch_bytes("TabSeparated")
            .unwrap_or_else(|e| panic!("block {} of docs/sql.md:\n{sql}\n{e}", i + 1));
        let bytes = cursor
            .collect()
            .await
            .unwrap_or_else(|e| panic!("block {} of docs/sql.md failed:\n{sql}\n{e}", i + 1));
        let answer = String::from_utf8(bytes.to_vec()).expect("UTF-8");
        assert!(
            !answer.trim().is_empty(),
            "block {} answered nothing:\n{sql}",
            i + 1
        );
        answers.push(answer);
    }
    // The timeline: the example session, in order, microseconds kept, once each.
    assert!(
        answers[0].starts_with("2021-09-26 09:15:27.243860\tparty\tOpen\t"),
        "{}",
        answers[0]
    );
    assert_eq!(answers[0].lines().count(), 2, "{}", answers[0]);
    // Per category per hour: three party events and one page view, two hours.
    assert_eq!(
        answers[1],
        "2021-09-26 09:00:00\tpage view\t1\n2021-09-26 09:00:00\tparty\t2\n2021-09-26 10:00:00\tparty\t1\n"
    );
    assert_eq!(answers[2], "2021-09-26\t2\t4\n");
    // Funnel: both sessions opened; only the example clicked after opening.
    assert_eq!(answers[3], "2\t1\t50\n");
    assert_eq!(
        answers[4].lines().next(),
        Some("invalid_timestamp\t2\t1\tbad")
    );
}
