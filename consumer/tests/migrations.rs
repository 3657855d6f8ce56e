//! Migrations against a real ClickHouse 18.16: the database is created,
//! applying is idempotent and safe when two consumers start at once, and an
//! applied migration that changed stops the start-up naming its file.

use consumer::migrations::{self, MigrationError, MIGRATIONS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_starts_at_once_and_a_restart_leave_one_schema() {
    let server = eye_testkit::shared_clickhouse();
    // Not created by the test: the migrations create it.
    let database = eye_testkit::unique_name("migrate");
    let first = server.client(&database);
    let second = server.client(&database);

    let (a, b) = tokio::join!(
        migrations::migrate(&first, &database),
        migrations::migrate(&second, &database)
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    // Both may have applied everything: that is allowed and harmless.
    assert!(
        a.len() == MIGRATIONS.len() || b.len() == MIGRATIONS.len(),
        "{a:?} {b:?}"
    );

    // A restart finds nothing to do.
    assert_eq!(
        migrations::migrate(&first, &database).await.expect("again"),
        Vec::<u32>::new()
    );

    let applied = migrations::applied(&first).await.expect("applied");
    let versions: Vec<u32> = applied.iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    for (recorded, migration) in applied.iter().zip(MIGRATIONS) {
        assert_eq!(recorded.name, migration.name);
        assert_eq!(recorded.checksum, migration.checksum());
    }
    let tables: Vec<String> = first
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&database)
        .fetch_all()
        .await
        .expect("tables");
    assert_eq!(
        tables,
        [
            "event_errors",
            "events",
            "events_by_category",
            "events_by_category_mv",
            "schema_migrations"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_applied_migration_stops_the_start_naming_the_file() {
    let server = eye_testkit::shared_clickhouse();
    let database = eye_testkit::unique_name("tampered");
    let client = server.client(&database);
    migrations::migrate(&client, &database)
        .await
        .expect("first start");
    // As if 0002 had been applied from a different file.
    client
        .query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (2, '0002_event_errors', 'f00d', now())")
        .execute()
        .await
        .expect("tamper");
    client
        .query("OPTIMIZE TABLE schema_migrations FINAL")
        .execute()
        .await
        .expect("merge");

    let error = migrations::migrate(&client, &database).await.unwrap_err();
    assert!(matches!(error, MigrationError::Checksum { .. }), "{error}");
    assert!(error.is_permanent());
    let message = error.to_string();
    assert!(
        message.contains("migrations/0002_event_errors.sql"),
        "{message}"
    );
    assert!(message.contains("f00d"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_retryable_error() {
    let closed = eye_testkit::closed_port();
    let client =
        eye_server_kit::clickhouse::client(&eye_server_kit::clickhouse::ClickHouseConfig {
            url: format!("http://127.0.0.1:{closed}"),
            database: "eye".to_owned(),
            user: "default".to_owned(),
            password: String::new(),
        });
    let error = migrations::migrate(&client, "eye").await.unwrap_err();
    assert!(!error.is_permanent());
    assert!(error.to_string().contains("create_database.sql"), "{error}");
}
