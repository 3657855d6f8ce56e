//! Temporary directories for server data and logs, and cleaning up after test
//! processes that could not clean up themselves.
//!
//! A server owned by a test is dropped with its `TempDir`. The shared servers
//! live in statics, which Rust never drops, and a test process killed with
//! SIGKILL drops nothing; their servers die with the process (see
//! [`crate::process`]) but their directories stay. Each directory therefore
//! records its owner (pid and start time), and every test process, when it
//! creates its first directory, removes those whose owner is gone.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use tempfile::TempDir;

use crate::HarnessError;

const PREFIX: &str = "eye-testkit-";
const OWNER_FILE: &str = "owner";
/// A directory without an owner file is one being created right now, or left
/// by a process that died during the few microseconds of creating it.
const UNOWNED_GRACE: Duration = Duration::from_secs(600);

/// A fresh directory `$TMPDIR/eye-testkit-<kind>-XXXXXX`, marked as owned by
/// this process, with its canonical path.
pub(crate) fn server_dir(kind: &str) -> Result<(TempDir, PathBuf), HarnessError> {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(sweep_stale_dirs);

    let dir = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{kind}-"))
        .tempdir()
        .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
    // Servers are given this path in their configuration; the canonical form
    // is what they report back (ClickHouse's `system.databases.data_path`).
    let path = fs::canonicalize(dir.path())
        .map_err(|e| HarnessError::io(format!("resolving {}", dir.path().display()), e))?;
    if let Some(owner) = this_process() {
        fs::write(path.join(OWNER_FILE), owner.to_string()).map_err(|e| {
            HarnessError::io(format!("writing the owner file in {}", path.display()), e)
        })?;
    }
    Ok((dir, path))
}

/// A process, identified across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    started: u64,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.pid, self.started)
    }
}

impl Owner {
    fn parse(text: &str) -> Option<Owner> {
        let mut fields = text.split_whitespace();
        let pid = fields.next()?.parse().ok()?;
        let started = fields.next()?.parse().ok()?;
        Some(Owner { pid, started })
    }

    fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
    }
}

fn this_process() -> Option<Owner> {
    let pid = std::process::id();
    Some(Owner {
        pid,
        started: start_time(pid)?,
    })
}

/// Start time of `pid`, or `None` if there is no such process (or no /proc).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces;
    // fields after it are space-separated, starting with field 3.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

fn sweep_stale_dirs() {
    if this_process().is_none() {
        // Without /proc we cannot tell the living from the dead: keep all.
        return;
    }
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(PREFIX));
        if is_ours && entry.file_type().is_ok_and(|kind| kind.is_dir()) && is_stale(&entry.path()) {
            if let Err(error) = fs::remove_dir_all(entry.path()) {
                tracing::debug!("could not remove stale {}: {error}", entry.path().display());
            }
        }
    }
}

fn is_stale(dir: &Path) -> bool {
    match fs::read_to_string(dir.join(OWNER_FILE)) {
        Ok(text) => Owner::parse(&text).is_none_or(|owner| !owner.is_alive()),
        Err(_) => dir
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > UNOWNED_GRACE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = this_process().expect("/proc is available on Linux");
        assert!(me.is_alive());
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
        let impostor = Owner {
            started: me.started + 1,
            ..me
        };
        assert!(
            !impostor.is_alive(),
            "same pid, other start time: pid reuse"
        );
    }

    #[test]
    fn a_dead_owners_directory_is_stale_and_ours_is_not() {
        let (_dir, path) = server_dir("selftest").expect("temporary directory");
        assert!(!is_stale(&path));
        fs::write(path.join(OWNER_FILE), "4194304 1").expect("rewrite owner");
        assert!(is_stale(&path), "pid 4194304 is above Linux's pid_max");
    }
}
