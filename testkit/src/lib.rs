//! Test harness: real `nats-server` (JetStream) and `clickhouse-server`
//! processes on free loopback ports, with temporary directories, for
//! integration tests. Dev-only.
//!
//! Rules this crate keeps:
//! - **Real servers, never skipped.** A missing binary is an error naming the
//!   Debian package to install ([`HarnessError::BinaryNotFound`]).
//! - **Wait with a deadline.** Start-up polls readiness and fails after 30 s
//!   with the end of the server's log, never a bare sleep.
//! - **No orphans.** A server dies when its handle is dropped, and also when
//!   the test process ends in any way, panics and SIGKILL included (see
//!   `process.rs`); leftover directories of dead test processes are removed
//!   by the next one.
//! - **Isolation by name.** Tests of one binary share one server of each kind
//!   ([`shared_nats`], [`shared_clickhouse`]) and keep apart with
//!   [`unique_name`]d streams, consumers and databases. A test that kills or
//!   restarts a server starts its own.
//!
//! Module map: [`service`] (running our own services in a test), [`NatsServer`] (`nats_server.rs`), JetStream clusters of them
//! ([`NatsServerBuilder::start_cluster`], `nats_cluster.rs`), [`ClickHouseServer`]
//! (`clickhouse_server.rs`, configured from `deploy/clickhouse/*.xml`), the
//! process plumbing (`process.rs`), temporary directories (`workdir.rs`),
//! ports (`ports.rs`), binaries (`binary.rs`), readiness probes (`probe.rs`).
//!
//! ```no_run
//! # async fn example() {
//! let clickhouse = eye_testkit::shared_clickhouse();
//! let database = clickhouse.create_database("events_test").await;
//! let client = clickhouse.client(&database);
//! client.query("CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x").execute().await.unwrap();
//! # }
//! ```

mod binary;
mod child_service;
mod clickhouse_server;
mod error;
mod nats_cluster;
mod nats_server;
mod ports;
mod probe;
mod process;
pub mod service;
mod workdir;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

pub use child_service::ChildService;
pub use clickhouse_server::ClickHouseServer;
pub use error::HarnessError;
pub use nats_cluster::{CLUSTER_NAME_ENV, CLUSTER_PORT_ENV, ROUTES_ENV};
pub use nats_server::{NatsServer, NatsServerBuilder};
pub use ports::closed_port;

/// The repository's `schemas/` directory, for services started by tests.
pub fn schemas_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// The `nats-server` shared by the tests of this test binary, started on
/// first use. It lives until the process exits (then the kernel kills it).
///
/// # Panics
/// If it cannot start; the message says why and quotes its log.
pub fn shared_nats() -> &'static NatsServer {
    static SERVER: OnceLock<NatsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        NatsServer::start()
            .unwrap_or_else(|error| panic!("starting the shared nats-server: {error}"))
    })
}

/// The `clickhouse-server` shared by the tests of this test binary, started
/// on first use. It lives until the process exits (then the kernel kills it).
///
/// # Panics
/// If it cannot start; the message says why and quotes its log.
pub fn shared_clickhouse() -> &'static ClickHouseServer {
    static SERVER: OnceLock<ClickHouseServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ClickHouseServer::start()
            .unwrap_or_else(|error| panic!("starting the shared clickhouse-server: {error}"))
    })
}

/// A name no other test (in this or a concurrent test process) uses:
/// `<prefix>_<pid>_<counter>_<8 hex digits>`, e.g. `orders_4242_7_3f9a01bc`.
///
/// Valid as a JetStream stream or consumer name, a subject token, and an
/// unquoted ClickHouse identifier (letters, digits, `_`, not starting with a
/// digit).
///
/// # Panics
/// If `prefix` is empty, starts with a digit or contains anything but ASCII
/// letters, digits and `_` (a test bug: the name would not be valid).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let valid = prefix
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    assert!(
        valid,
        "unique_name prefix {prefix:?} must match [A-Za-z_][A-Za-z0-9_]*"
    );
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Not secure randomness, just enough to tell apart runs that reuse a pid
    // (e.g. two runs against the same long-lived server).
    let salt = RandomState::new().hash_one((SystemTime::now(), count)) as u32;
    format!("{prefix}_{}_{count}_{salt:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_identifiers() {
        let a = unique_name("events");
        let b = unique_name("events");
        assert_ne!(a, b);
        for name in [a, b] {
            assert!(name.starts_with("events_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "must match")]
    fn unique_name_rejects_a_dotted_prefix() {
        unique_name("eye.events");
    }
}
