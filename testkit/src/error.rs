//! Why a test server could not be started, stopped or restarted.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// A failure of the harness itself (not of the code under test). Every
/// variant's message says what to do about it, and start-up failures carry
/// the end of the server's log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The server binary is not installed where we look for it.
    #[error(
        "{binary} not found on PATH (or /usr/sbin, /usr/bin, /usr/local/bin): \
         install it with `apt-get install {package}`, or set {env_var} to its path"
    )]
    BinaryNotFound {
        /// The program's file name, e.g. `nats-server`.
        binary: &'static str,
        /// The Debian package that installs it.
        package: &'static str,
        /// The environment variable that overrides the search.
        env_var: &'static str,
    },

    /// The override variable names something that is not an executable file.
    #[error("{env_var}={} is not an executable file; unset it to search PATH", path.display())]
    BadBinaryOverride {
        /// The environment variable that was set.
        env_var: &'static str,
        /// Its value.
        path: PathBuf,
    },

    /// An operating-system operation of the harness failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// The server process ended before it was ready.
    #[error("{server} exited during start-up ({status})\n{log_tail}")]
    Exited {
        /// Which server.
        server: &'static str,
        /// How it ended.
        status: ExitStatus,
        /// The last lines of its logs.
        log_tail: String,
    },

    /// The server kept running but did not become ready in time.
    #[error("{server} was not ready after {waited:?} (last check: {last_check})\n{log_tail}")]
    StartTimeout {
        /// Which server.
        server: &'static str,
        /// How long the harness waited.
        waited: Duration,
        /// Why the last readiness check failed.
        last_check: String,
        /// The last lines of its logs.
        log_tail: String,
    },

    /// The options given to a builder contradict each other.
    #[error("{0}")]
    InvalidOptions(&'static str),

    /// `start_again` was called while the server was still running.
    #[error("{server} is still running (pid {pid}): kill() or stop() it before start_again()")]
    AlreadyRunning {
        /// Which server.
        server: &'static str,
        /// Its process id.
        pid: u32,
    },
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether the server died because one of its ports was taken between the
    /// harness choosing it and the server binding it (worth another try with
    /// fresh ports).
    pub(crate) fn is_address_in_use(&self) -> bool {
        match self {
            HarnessError::Exited { log_tail, .. } => log_tail
                .to_ascii_lowercase()
                .contains("address already in use"),
            _ => false,
        }
    }
}
