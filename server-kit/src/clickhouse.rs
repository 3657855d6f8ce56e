//! A ClickHouse client that is fast and correct against every server we run.
//!
//! Rule: every service builds its `clickhouse::Client` with [`client`], never
//! with `clickhouse::Client::default()`. The default transport leaves Nagle's
//! algorithm on, and the HTTP settings below are what make the crate work with
//! ClickHouse 18.16 (the Debian package) as well as current versions.

use std::fmt;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Where and how to reach ClickHouse.
///
/// `Debug` hides the password, so the struct can be logged at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// Base URL of the HTTP interface, e.g. `http://127.0.0.1:8123` (no path,
    /// no database: the database is [`ClickHouseConfig::database`]).
    pub url: String,
    /// Database every query and insert runs in, sent as the `database`
    /// parameter of each request (not as a `db.table` prefix, so the same SQL
    /// works in any database, e.g. a test's throwaway one).
    pub database: String,
    /// User name, sent in the `X-ClickHouse-User` header. `default` on a fresh
    /// server.
    pub user: String,
    /// Password, sent in the `X-ClickHouse-Key` header. Empty for a user
    /// without password (the fresh server's `default`).
    pub password: String,
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.password.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &password)
            .finish()
    }
}

/// How long an idle pooled connection may be reused. ClickHouse closes idle
/// HTTP connections after `keep_alive_timeout` (3 s in our
/// `deploy/clickhouse/config.xml` and in 18.16's packaged config, 10 s in
/// current versions' default). Reusing a connection the server is closing at
/// that moment fails the request, so the client gives up on it well before.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// TCP keep-alive probes on open connections, so a peer that vanished (host
/// down, NAT entry expired) is noticed on a long-running query or insert.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Connecting to an address that silently drops packets would otherwise hang
/// for the OS's SYN retry time (about two minutes): fail fast and let the
/// caller's retry/backoff and readiness checks decide.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a client for `cfg`.
///
/// - **`TCP_NODELAY`.** With Nagle's algorithm on, a small segment written
///   while an earlier one is still unacknowledged waits for that ACK, and the
///   server delays its ACKs (delayed ACK, ~40 ms on Linux). An INSERT goes out
///   as several writes (headers, body chunks, the closing chunk), so it can
///   pay that wait every time: DESIGN.md records a ~40 ms floor per INSERT
///   with the crate's default transport (1,000-row batches at ~22 k rows/s,
///   ~70 k with `TCP_NODELAY`). A re-check with clickhouse 0.15.3 over
///   loopback did not show the stall, but a request/response protocol loses
///   nothing by turning Nagle off, so it stays off.
/// - **Pool.** Idle connections are dropped after 2 s, below the server's
///   keep-alive timeout (see [`POOL_IDLE_TIMEOUT`]).
/// - **No schema validation.** Validation makes the crate fetch the table's
///   schema and use the `RowBinaryWithNamesAndTypes` format, which ClickHouse
///   18.16 does not have; with it off, rows travel as plain `RowBinary`, which
///   every version understands. The price is that a `Row` struct that does
///   not match the table fails with a terse "not enough data" error instead
///   of naming the column: keep a round-trip test per table.
/// - **LZ4.** Inserts are sent as ClickHouse's own compressed blocks with the
///   `decompress=1` parameter, which 18.16 supports (covered by
///   `eye-testkit`'s ClickHouse round-trip test); for results the crate only
///   asks for `Accept-Encoding: lz4`, which servers that do not offer it
///   (18.16, or current ones with `enable_http_compression = 0`) ignore and
///   answer uncompressed.
///
/// Building the client needs no runtime; using it needs a Tokio runtime
/// (connection tasks are spawned on the runtime current at request time).
pub fn client(cfg: &ClickHouseConfig) -> clickhouse::Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));

    let http = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        // Evicts idle connections in the background too, instead of only
        // noticing their age at the next checkout.
        .pool_timer(TokioTimer::new())
        .build(connector);

    clickhouse::Client::with_http_client(http)
        .with_url(&cfg.url)
        .with_database(&cfg.database)
        .with_user(&cfg.user)
        .with_password(&cfg.password)
        .with_validation(false)
        .with_compression(clickhouse::Compression::Lz4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let cfg = ClickHouseConfig {
            url: "http://127.0.0.1:8123".to_owned(),
            database: "eye".to_owned(),
            user: "eye_reader".to_owned(),
            password: "s3cret".to_owned(),
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("eye_reader"), "{shown}");
    }

    #[test]
    fn client_targets_the_configured_database() {
        let cfg = ClickHouseConfig {
            url: "http://127.0.0.1:8123".to_owned(),
            database: "eye_test".to_owned(),
            user: "default".to_owned(),
            password: String::new(),
        };
        assert_eq!(client(&cfg).database(), Some("eye_test"));
    }
}
