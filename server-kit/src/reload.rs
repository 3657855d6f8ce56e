//! The client registry of a running service, reloaded from its file on SIGHUP,
//! and the SIGHUP loop every reloadable part shares ([`on_sighup`]).
//!
//! The rule: a request always sees one whole registry, the old or the new,
//! never a mix, and never waits for a reload. Each request takes a snapshot
//! (`Arc<ClientRegistry>`) under a read lock held only for the copy of the
//! pointer; a reload parses the file outside the lock and swaps the pointer.
//! A file that does not load keeps the old registry and logs why (without
//! quoting a secret: see `clients.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clients::{ClientRegistry, ClientsError};

/// The registry in force and the file it comes from.
#[derive(Debug)]
pub struct SharedClients {
    path: PathBuf,
    current: RwLock<Arc<ClientRegistry>>,
}

impl SharedClients {
    /// Loads the registry from `path` (an error stops the start-up).
    pub fn load(path: impl AsRef<Path>) -> Result<Arc<SharedClients>, ClientsError> {
        let path = path.as_ref().to_owned();
        let registry = ClientRegistry::load(&path)?;
        tracing::info!(file = %path.display(), clients = registry.len(), "loaded the client registry");
        Ok(Arc::new(SharedClients {
            path,
            current: RwLock::new(Arc::new(registry)),
        }))
    }

    /// A registry that is never reloaded (for tests and code-built registries).
    pub fn fixed(registry: ClientRegistry) -> Arc<SharedClients> {
        Arc::new(SharedClients {
            path: PathBuf::new(),
            current: RwLock::new(Arc::new(registry)),
        })
    }

    /// The registry in force now. Keep the snapshot for the whole request.
    pub fn current(&self) -> Arc<ClientRegistry> {
        // A poisoned lock only means a writer panicked between two whole
        // pointers; the pointer itself is always whole.
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&guard)
    }

    /// Loads the file again; on success the new registry is in force for every
    /// request that starts after this returns, on failure the old one stays.
    pub fn reload(&self) -> Result<usize, ClientsError> {
        let registry = ClientRegistry::load(&self.path)?;
        let clients = registry.len();
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(registry);
        Ok(clients)
    }

    /// Reloads, logging the result: what a SIGHUP does.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(clients) => {
                tracing::info!(file = %self.path.display(), clients, "reloaded the client registry");
            }
            Err(error) => {
                tracing::error!(%error, "client registry NOT reloaded; the previous one stays in force");
            }
        }
    }

    /// Reloads on every SIGHUP until `shutdown` is cancelled (see [`on_sighup`]).
    pub fn reload_on_sighup(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        on_sighup(vec![Arc::clone(self) as Arc<dyn Reload>], shutdown)
    }
}

impl Reload for SharedClients {
    fn what(&self) -> String {
        format!("the client registry ({})", self.path.display())
    }

    fn reload_and_log(&self) {
        SharedClients::reload_and_log(self);
    }
}

/// Something a SIGHUP reloads: the client registry, the event schemas.
pub trait Reload: Send + Sync + 'static {
    /// What is reloaded, for the log.
    fn what(&self) -> String;
    /// Reloads, logging the result; a failure keeps what was in force.
    fn reload_and_log(&self);
}

/// Reloads every target, in order, on every SIGHUP until `shutdown` is
/// cancelled, each off the async workers (file I/O and parsing). Only Unix
/// has SIGHUP; elsewhere this does nothing.
pub fn on_sighup(targets: Vec<Arc<dyn Reload>>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut hangups = match signal(SignalKind::hangup()) {
                Ok(hangups) => hangups,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP; nothing will be reloaded");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    received = hangups.recv() => {
                        if received.is_none() {
                            return;
                        }
                        for target in &targets {
                            tracing::info!(what = %target.what(), "SIGHUP: reloading");
                            let target = Arc::clone(target);
                            if let Err(error) = tokio::task::spawn_blocking(move || target.reload_and_log()).await {
                                tracing::error!(%error, "a reload failed");
                            }
                        }
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (targets, shutdown);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_replaces_the_registry_and_a_bad_one_keeps_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("clients.toml");
        std::fs::write(
            &file,
            "[[clients]]\nid = \"a\"\nwrite_keys = [{ key = \"k1\" }]\n",
        )
        .expect("write");
        let shared = SharedClients::load(&file).expect("loads");
        let before = shared.current();
        assert!(before.by_write_key("k1").is_some());

        std::fs::write(
            &file,
            "[[clients]]\nid = \"a\"\nwrite_keys = [{ key = \"k2\" }]\n",
        )
        .expect("write");
        assert_eq!(shared.reload().expect("reloads"), 1);
        let after = shared.current();
        assert!(after.by_write_key("k1").is_none() && after.by_write_key("k2").is_some());
        assert!(
            before.by_write_key("k1").is_some(),
            "a snapshot taken before stays whole"
        );

        std::fs::write(&file, "[[clients]]\nid = \"a.b\"\n").expect("write");
        assert!(shared.reload().is_err());
        assert!(
            shared.current().by_write_key("k2").is_some(),
            "a bad file keeps the old registry"
        );
        std::fs::remove_file(&file).expect("remove");
        assert!(shared.reload().is_err());
        assert!(shared.current().by_write_key("k2").is_some());
    }
}
