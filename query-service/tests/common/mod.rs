//! What the query service's tests share: a database with the schema (applied
//! by the consumer's migrations), rows inserted like the consumer inserts
//! them, a clients file, and the service running as the read-only user.

#![allow(dead_code)]

use std::time::Duration;

use consumer::rows::{ErrorRow, EventRow};
use eye_testkit::service::{parse_config, RunningService};
use eye_testkit::ClickHouseServer;
use query_service::{Config, QueryError};
use uuid::Uuid;

/// Token of client `demo`, scope `all`.
pub const ADMIN_TOKEN: &str = "test_admin_read_token";
/// Token of client `shop`, scope `own`.
pub const SHOP_TOKEN: &str = "test_shop_read_token";

const CLIENTS: &str = r#"
[[clients]]
id = "demo"
read_tokens = [{ token = "test_admin_read_token", scope = "all" }]

[[clients]]
id = "shop"
write_keys = [{ key = "test_shop_write_key" }]
read_tokens = [{ token = "test_shop_read_token", scope = "own" }]
"#;

/// 2021-09-26T09:15:27Z in microseconds.
pub const T0: i64 = 1_632_647_727_000_000;

/// A database with the schema and a query service reading it.
pub struct Stack {
    /// The database.
    pub database: String,
    /// Client `default` on it (for inserts).
    pub writer: clickhouse::Client,
    /// The service.
    pub service: RunningService<QueryError>,
    /// HTTP client.
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A fresh database with the migrations applied.
pub async fn database(prefix: &str) -> (String, clickhouse::Client) {
    let clickhouse = eye_testkit::shared_clickhouse();
    let database = clickhouse.create_database(prefix).await;
    let writer = clickhouse.client(&database);
    consumer::migrations::migrate(&writer, &database)
        .await
        .expect("migrations apply");
    (database, writer)
}

impl Stack {
    /// Starts the service on a fresh database, with `extra` flags.
    pub async fn start(prefix: &str, extra: &[&str]) -> Stack {
        let (database, writer) = database(prefix).await;
        let clickhouse = eye_testkit::shared_clickhouse();
        Stack::start_on(database, writer, &clickhouse.http_url(), extra).await
    }

    /// Starts the service on `database` reached at `url` as the reader.
    pub async fn start_on(
        database: String,
        writer: clickhouse::Client,
        url: &str,
        extra: &[&str],
    ) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let clients = dir.path().join("clients.toml");
        std::fs::write(&clients, CLIENTS).expect("write clients file");
        let clients = clients.display().to_string();
        let config = reader_config(url, &database, &clients, extra);
        let service = RunningService::start(|listener, shutdown| {
            query_service::run(config, listener, shutdown)
        })
        .await;
        service
            .wait_for_status("/healthz", 200, Duration::from_secs(10))
            .await;
        Stack {
            database,
            writer,
            service,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Inserts events, as the consumer does.
    pub async fn insert(&self, rows: &[EventRow]) {
        insert(&self.writer, rows).await;
    }

    /// Inserts rejects, as the consumer does.
    pub async fn insert_errors(&self, rows: &[ErrorRow]) {
        let mut insert = self
            .writer
            .insert::<ErrorRow>("event_errors")
            .await
            .expect("insert");
        for row in rows {
            insert.write(row).await.expect("write");
        }
        insert.end().await.expect("insert ends");
    }

    /// GET `path` with `token` (or none); the status and the body as JSON.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut request = self.http.get(self.service.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    /// GET `path` as the admin.
    pub async fn admin(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST a search body as the admin.
    pub async fn search(&self, body: &serde_json::Value) -> (u16, serde_json::Value) {
        answer(
            self.http
                .post(self.service.url("/v1/events/search"))
                .bearer_auth(ADMIN_TOKEN)
                .json(body),
        )
        .await
    }

    /// Every page of `path` (which has a query string) with `limit`.
    pub async fn all_pages(&self, path: &str, member: &str) -> Vec<Vec<serde_json::Value>> {
        self.pages_from(path, member, None).await
    }

    /// Every page of `path` from `cursor` on.
    pub async fn pages_from(
        &self,
        path: &str,
        member: &str,
        mut cursor: Option<String>,
    ) -> Vec<Vec<serde_json::Value>> {
        let mut pages = Vec::new();
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}&cursor={c}"),
                None => path.to_owned(),
            };
            let body = self.admin(&url).await;
            pages.push(body[member].as_array().expect("rows").clone());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return pages,
            }
            assert!(pages.len() < 1000, "pagination does not end");
        }
    }
}

/// The service's configuration: ClickHouse at `url`, `database`, as the
/// read-only user, the clients of `clients_file`, and `extra` flags.
pub fn reader_config(url: &str, database: &str, clients_file: &str, extra: &[&str]) -> Config {
    let mut args = vec![
        "--clickhouse-url",
        url,
        "--clickhouse-database",
        database,
        "--clickhouse-user",
        ClickHouseServer::READER_USER,
        "--clickhouse-password",
        ClickHouseServer::READER_PASSWORD,
        "--clients-file",
        clients_file,
    ];
    args.extend_from_slice(extra);
    parse_config(&args)
}

/// Sends `request`; the status and the body as JSON (problem documents too).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    if status >= 400 {
        assert_eq!(content_type, "application/problem+json", "{text}");
    }
    (status, body)
}

/// Inserts `rows` into `events` with `client`.
pub async fn insert(client: &clickhouse::Client, rows: &[EventRow]) {
    let mut insert = client.insert::<EventRow>("events").await.expect("insert");
    for row in rows {
        insert.write(row).await.expect("write");
    }
    insert.end().await.expect("insert ends");
}

/// An event row of client `demo`.
pub fn event(session: Uuid, id: &str, category: &str, name: &str, at_us: i64) -> EventRow {
    EventRow {
        event_id: id.to_owned(),
        client_id: "demo".to_owned(),
        session_id: session,
        category: category.to_owned(),
        name: name.to_owned(),
        data: format!(r#"{{"id":"{id}","n":1}}"#),
        timestamp: u32::try_from(at_us / 1_000_000).expect("in range"),
        timestamp_us: at_us,
        received_at: u32::try_from(at_us / 1_000_000).expect("in range"),
        received_us: at_us,
    }
}

/// A reject row.
pub fn reject(id: &str, client: &str, code: &str, at_us: i64) -> ErrorRow {
    ErrorRow {
        reject_id: id.to_owned(),
        source: "gateway".to_owned(),
        client_id: client.to_owned(),
        received_at: u32::try_from(at_us / 1_000_000).expect("in range"),
        received_us: at_us,
        code: code.to_owned(),
        message: "bad".to_owned(),
        pointer: "/timestamp".to_owned(),
        category: "party".to_owned(),
        session_id: "nope".to_owned(),
        event_id: String::new(),
        raw: r#"{"session_id":"nope"}"#.to_owned(),
        raw_truncated: 0,
    }
}

/// The `event_id`s of rows.
pub fn ids(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}
