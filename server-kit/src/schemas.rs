//! The event schemas of a running service, reloaded from their directory on
//! SIGHUP, so a category can be added or a schema changed without a restart.
//!
//! Same rule as the client registry ([`crate::reload`]): each event is checked
//! against one whole set of schemas, the old or the new, never a mix; a reload
//! compiles the directory outside the lock and swaps the validator; a
//! directory that does not load (a broken file, two files for one category)
//! keeps the schemas in force and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use eye_contract::{Limits, RegistryError, SchemaRegistry, TimeRules, Validator};

use crate::reload::Reload;

/// The validator in force and the directory its schemas come from.
#[derive(Debug)]
pub struct SharedSchemas {
    dir: PathBuf,
    current: RwLock<Validator>,
}

impl SharedSchemas {
    /// Loads and compiles `dir/*.json` (an error stops the start-up); events
    /// are checked with `time_rules` and `limits`.
    pub fn load(
        dir: impl AsRef<Path>,
        time_rules: TimeRules,
        limits: Limits,
    ) -> Result<Arc<SharedSchemas>, RegistryError> {
        let dir = dir.as_ref().to_owned();
        let registry = SchemaRegistry::load_dir(&dir)?;
        tracing::info!(dir = %dir.display(), categories = ?registry.categories().collect::<Vec<_>>(), "loaded event schemas");
        let validator = Validator::new(Arc::new(registry))
            .with_time_rules(time_rules)
            .with_limits(limits);
        Ok(Arc::new(SharedSchemas {
            dir,
            current: RwLock::new(validator),
        }))
    }

    /// A validator that is never reloaded (tests, one-off commands).
    pub fn fixed(validator: Validator) -> Arc<SharedSchemas> {
        Arc::new(SharedSchemas {
            dir: PathBuf::new(),
            current: RwLock::new(validator),
        })
    }

    /// The validator in force now (cheap: the schemas are shared). Keep it
    /// for a whole request or batch.
    pub fn current(&self) -> Validator {
        // A poisoned lock only means a writer panicked between two whole
        // validators; the value itself is always whole.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the directory again; on success its schemas are in force for
    /// every event checked after this returns (with the same time rules and
    /// limits), on failure the old ones stay. Returns the categories.
    pub fn reload(&self) -> Result<Vec<String>, RegistryError> {
        let registry = SchemaRegistry::load_dir(&self.dir)?;
        let categories = registry.categories().map(str::to_owned).collect();
        let old = self.current();
        let validator = Validator::new(Arc::new(registry))
            .with_time_rules(*old.time_rules())
            .with_limits(*old.limits());
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = validator;
        Ok(categories)
    }
}

impl Reload for SharedSchemas {
    fn what(&self) -> String {
        format!("the event schemas ({})", self.dir.display())
    }

    fn reload_and_log(&self) {
        match self.reload() {
            Ok(categories) => {
                tracing::info!(dir = %self.dir.display(), ?categories, "reloaded the event schemas");
            }
            Err(error) => {
                tracing::error!(%error, "event schemas NOT reloaded; the previous ones stay in force");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(category: &str, required: &str) -> String {
        format!(
            r#"{{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "{category}",
               "x-eye-category": "{category}", "type": "object", "required": ["{required}"]}}"#
        )
    }

    #[test]
    fn a_new_category_is_known_after_a_reload_and_a_broken_directory_keeps_the_old_schemas() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("party.json"), schema("party", "host")).expect("write");
        let limits = Limits {
            max_event_bytes: 1000,
            ..Limits::default()
        };
        let shared = SharedSchemas::load(dir.path(), TimeRules::default(), limits).expect("loads");
        let before = shared.current();
        assert!(before.registry().contains("party"));
        assert!(!before.registry().contains("checkout"));

        std::fs::write(dir.path().join("checkout.json"), schema("checkout", "cart"))
            .expect("write");
        let categories = shared.reload().expect("reloads");
        assert_eq!(categories, ["checkout", "party"]);
        let after = shared.current();
        assert!(after.registry().contains("checkout"));
        assert_eq!(after.limits().max_event_bytes, 1000, "the limits are kept");
        assert!(
            !before.registry().contains("checkout"),
            "a validator taken before stays whole"
        );

        std::fs::write(dir.path().join("broken.json"), "{ not json").expect("write");
        assert!(shared.reload().is_err());
        assert!(
            shared.current().registry().contains("checkout"),
            "a broken directory keeps the schemas in force"
        );
    }
}
