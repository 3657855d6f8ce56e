//! ClickHouse through the shared test server and the services' client
//! (`eye_server_kit::clickhouse::client`): types that 18.16 supports, rows
//! written with `Client::insert` and read back exactly, isolation by database,
//! and the read-only user.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const CREATE_EVENTS: &str = "
    CREATE TABLE events (
        session_id UUID,
        occurred   DateTime('UTC'),
        category   String,
        seq        UInt32,
        value      Int64
    ) ENGINE = MergeTree ORDER BY (session_id, occurred, seq)";

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Event {
    #[serde(with = "clickhouse::serde::uuid")]
    session_id: Uuid,
    /// `DateTime` travels as seconds since the epoch.
    occurred: u32,
    category: String,
    seq: u32,
    value: i64,
}

fn events(session_id: Uuid, count: u32) -> Vec<Event> {
    (0..count)
        .map(|seq| Event {
            session_id,
            // 2021-09-26 09:15:27 UTC onwards.
            occurred: 1_632_647_727 + seq,
            category: if seq % 2 == 0 {
                "page interaction".to_owned()
            } else {
                "party ü ✓".to_owned()
            },
            seq,
            value: i64::from(seq) * -1_000_000_007,
        })
        .collect()
}

async fn insert_all(client: &clickhouse::Client, rows: &[Event]) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<Event>("events").await?;
    for row in rows {
        insert.write(row).await?;
    }
    insert.end().await
}

#[tokio::test]
async fn rows_round_trip_exactly() -> TestResult {
    let server = eye_testkit::shared_clickhouse();
    let database = server.create_database("roundtrip").await;
    let client = server.client(&database);
    client.query(CREATE_EVENTS).execute().await?;

    let session_id = Uuid::parse_str("e2085be5-9137-4e4e-80b5-f1ffddc25423")?;
    // Enough rows for several LZ4-compressed chunks of the insert body.
    let written = events(session_id, 20_000);
    insert_all(&client, &written).await?;

    let read = client
        .query("SELECT ?fields FROM events ORDER BY seq")
        .fetch_all::<Event>()
        .await?;
    assert_eq!(read.len(), written.len());
    assert_eq!(read, written);

    // The server sees the same values as text, so both sides agree on the
    // UUID byte order and the time zone.
    let (uuid_text, time_text): (String, String) = client
        .query("SELECT toString(session_id), toString(occurred) FROM events WHERE seq = 1")
        .fetch_one()
        .await?;
    assert_eq!(uuid_text, "e2085be5-9137-4e4e-80b5-f1ffddc25423");
    assert_eq!(time_text, "2021-09-26 09:15:28");
    Ok(())
}

#[tokio::test]
async fn databases_of_different_tests_do_not_see_each_other() -> TestResult {
    let server = eye_testkit::shared_clickhouse();
    let first = server.create_database("isolated").await;
    let second = server.create_database("isolated").await;
    assert_ne!(first, second);

    for (database, count) in [(&first, 1), (&second, 3)] {
        let client = server.client(database);
        client.query(CREATE_EVENTS).execute().await?;
        insert_all(&client, &events(Uuid::new_v4(), count)).await?;
    }
    for (database, count) in [(&first, 1u64), (&second, 3)] {
        let seen: u64 = server
            .client(database)
            .query("SELECT count() FROM events")
            .fetch_one()
            .await?;
        assert_eq!(seen, count, "rows visible in {database}");
    }

    // A table created only in the second database is not there for the first.
    server
        .client(&second)
        .query("CREATE TABLE only_here (x UInt8) ENGINE = Memory")
        .execute()
        .await?;
    let error = server
        .client(&first)
        .query("SELECT count() FROM only_here")
        .fetch_one::<u64>()
        .await
        .expect_err("only_here belongs to the other database");
    assert!(
        error.to_string().contains("only_here"),
        "a readable server error: {error}"
    );
    Ok(())
}

#[tokio::test]
async fn the_reader_user_reads_and_cannot_write() -> TestResult {
    let server = eye_testkit::shared_clickhouse();
    let database = server.create_database("reader").await;
    let writer = server.client(&database);
    writer.query(CREATE_EVENTS).execute().await?;
    insert_all(&writer, &events(Uuid::new_v4(), 2)).await?;

    let reader = server.reader_client(&database);
    let count: u64 = reader
        .query("SELECT count() FROM events")
        .fetch_one()
        .await?;
    assert_eq!(count, 2);
    // readonly = 2 lets a query carry settings (readonly = 1 would refuse).
    let count: u64 = reader
        .clone()
        .with_setting("max_threads", "1")
        .query("SELECT count() FROM events")
        .fetch_one()
        .await?;
    assert_eq!(count, 2);

    let insert = insert_all(&reader, &events(Uuid::new_v4(), 1)).await;
    assert!(insert.is_err(), "the reader must not insert");
    let drop = reader.query("DROP TABLE events").execute().await;
    assert!(drop.is_err(), "the reader must not drop tables");
    let wrong_password =
        eye_server_kit::clickhouse::client(&eye_server_kit::clickhouse::ClickHouseConfig {
            password: "wrong".to_owned(),
            ..server.reader_config(&database)
        });
    let denied = wrong_password.query("SELECT 1").fetch_one::<u8>().await;
    assert!(denied.is_err(), "a wrong password is refused");
    Ok(())
}
