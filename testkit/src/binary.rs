//! Finding a server binary: an explicit override, else PATH, else the
//! directories Debian packages install servers into (often not on a non-root
//! user's PATH).

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::HarnessError;

/// A server program the harness runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Program {
    /// File name, e.g. `nats-server`.
    pub(crate) binary: &'static str,
    /// Debian package that installs it.
    pub(crate) package: &'static str,
    /// Environment variable holding an explicit path.
    pub(crate) env_var: &'static str,
}

pub(crate) const NATS_SERVER: Program = Program {
    binary: "nats-server",
    package: "nats-server",
    env_var: "EYE_NATS_SERVER_BIN",
};

pub(crate) const CLICKHOUSE_SERVER: Program = Program {
    binary: "clickhouse-server",
    package: "clickhouse-server",
    env_var: "EYE_CLICKHOUSE_SERVER_BIN",
};

const FALLBACK_DIRS: [&str; 3] = ["/usr/sbin", "/usr/bin", "/usr/local/bin"];

impl Program {
    /// The path to run. Never falls back silently: a missing binary is an
    /// error that names the package to install.
    pub(crate) fn locate(&self) -> Result<PathBuf, HarnessError> {
        if let Some(path) = env::var_os(self.env_var).filter(|value| !value.is_empty()) {
            let path = PathBuf::from(path);
            return if is_executable(&path) {
                Ok(path)
            } else {
                Err(HarnessError::BadBinaryOverride {
                    env_var: self.env_var,
                    path,
                })
            };
        }
        let path_dirs = env::var_os("PATH").unwrap_or_default();
        env::split_paths(&path_dirs)
            .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
            .map(|dir| dir.join(self.binary))
            .find(|candidate| is_executable(candidate))
            .ok_or(HarnessError::BinaryNotFound {
                binary: self.binary,
                package: self.package,
                env_var: self.env_var,
            })
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_package() {
        let program = Program {
            binary: "eye-no-such-server",
            package: "eye-no-such-package",
            env_var: "EYE_TESTKIT_UNSET_VARIABLE_FOR_THIS_TEST",
        };
        let message = program.locate().expect_err("must not be found").to_string();
        assert!(
            message.contains("eye-no-such-server not found on PATH"),
            "{message}"
        );
        assert!(
            message.contains("apt-get install eye-no-such-package"),
            "{message}"
        );
    }

    #[test]
    fn the_installed_servers_are_found() {
        // The harness refuses to skip, so a machine without them fails here
        // first, with the installation hint.
        for program in [NATS_SERVER, CLICKHOUSE_SERVER] {
            if let Err(error) = program.locate() {
                panic!("{error}");
            }
        }
    }
}
