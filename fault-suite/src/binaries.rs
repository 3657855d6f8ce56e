//! Finding the service binaries the suite runs: the ones built by the same
//! `cargo` profile as the test binary (`target/<profile>/eye-*`), or those in
//! `EYE_BIN_DIR`. A missing binary is an error that says how to build it; the
//! suite never falls back to anything else.

use std::path::{Path, PathBuf};

/// The gateway's binary name.
pub const GATEWAY: &str = "eye-gateway";
/// The consumer's binary name.
pub const CONSUMER: &str = "eye-consumer";
/// The query service's binary name.
pub const QUERY: &str = "eye-query";

/// Overrides the directory the binaries are taken from.
pub const BIN_DIR_ENV: &str = "EYE_BIN_DIR";

/// The path of binary `name`.
///
/// # Panics
/// If it is not there: the message names the `cargo build` that makes it.
pub fn path(name: &str) -> PathBuf {
    let dir = dir();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not found: build the services first with \
         `cargo build --release -p ingest-gateway -p consumer -p query-service` \
         (the same profile as this test), or set {BIN_DIR_ENV}",
        path.display()
    );
    path
}

/// `EYE_BIN_DIR`, else the profile directory of this test binary
/// (`target/release/deps/fault_suite-…` → `target/release`).
fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.pop();
    }
    dir
}

/// The repository's `deploy/clients.toml` (the demo client and its keys).
pub fn clients_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/clients.toml")
}
