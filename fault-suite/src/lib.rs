//! The fault suite: the whole stack (NATS, ClickHouse, `eye-gateway`,
//! `eye-consumer`, `eye-query`) as separate processes, a steady load through
//! the gateway, one fault per scenario, and a check **from the query service**
//! that every event the gateway answered "accepted" is readable exactly once
//! and every rejected one is in `/v1/errors`.
//!
//! The scenarios are the tests in `tests/faults.rs` (one named test each) and
//! `tests/cluster.rs` (a three-member NATS cluster losing its stream leader).
//! They run the release binaries built next to the test binary: run them with
//! `./deploy/local.sh test` (suite `faults`), or
//!
//! ```text
//! cargo build --release -p ingest-gateway -p consumer -p query-service
//! cargo test --release -p fault-suite -- --test-threads=1 --nocapture
//! ```
//!
//! # Map of the modules
//!
//! - [`binaries`]: finding our three binaries.
//! - [`stack`]: starting the stack and killing, stopping, restarting its parts.
//! - [`load`]: the load generator and its ledger of what the gateway answered.
//! - [`verify`]: reading everything back from the query service and comparing.
//! - [`report`]: the per-scenario figures, printed and checked.
//! - [`scenario`]: the steps every scenario shares.

pub mod binaries;
pub mod load;
pub mod report;
pub mod scenario;
pub mod stack;
pub mod verify;
