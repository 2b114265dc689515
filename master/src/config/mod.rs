//! One configuration layer for the whole service.
//!
//! Sources, lowest to highest precedence: the registry's built-in defaults,
//! `primacy-site.properties` (in `--conf DIR`, else `$PRIMACY_CONF_DIR`,
//! else `./conf`), environment variables (`ALLUXIO_*`, `PRIMACY_*`), and
//! `-D key=value` flags. Every value remembers its source. Keys, defaults
//! and rules are listed in `docs/configuration.md`, whose key table is
//! generated from [`registry`].
//!
//! [`MasterConfig::load`] parses every value once; [`MasterConfig::backend`]
//! chooses the journal and refuses contradictions; `ufs_journal_config`,
//! `zk_config` and `raft_journal_config` build each crate's config from the
//! typed values.

mod build;
mod choice;
pub mod docs;
mod env;
mod error;
mod load;
pub mod properties;
pub mod registry;
mod security;
mod settings;
pub mod typed;
pub mod value;

pub use choice::Backend;
pub use env::key_for_env;
pub use error::ConfigError;
pub use load::{
    LoadOptions, Properties, Setting, Source, UnknownKey, CONF_DIR_ENV, DEFAULT_CONF_DIR, SITE_FILE,
};
pub use security::SecuritySettings;
pub use settings::{
    EmbeddedSettings, JournalSettings, JournalType, MasterConfig, RetrySettings, WorkerSettings,
    ZooKeeperSettings,
};

#[cfg(test)]
mod tests;
