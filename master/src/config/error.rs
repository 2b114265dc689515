//! Configuration errors. Each names the key (or file), the offending value
//! and where that value came from, so the operator knows what to edit.

use std::path::PathBuf;

use journal_core::JournalError;

use super::Source;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value does not parse as its key's form.
    #[error("{key} = {value:?} (from {origin}) {detail}")]
    Malformed {
        /// The key.
        key: String,
        /// The raw value.
        value: String,
        /// Where the value came from.
        origin: Source,
        /// What is wrong with it.
        detail: String,
    },

    /// A required value is missing.
    #[error("{key} is not set: {detail}")]
    Missing {
        /// The key.
        key: String,
        /// Why it is needed and what to set it to.
        detail: String,
    },

    /// A value contradicts another (or the chosen backend).
    #[error("{key} = {value:?} (from {origin}) {detail}")]
    Contradiction {
        /// The key.
        key: String,
        /// The raw value.
        value: String,
        /// Where the value came from.
        origin: Source,
        /// What it contradicts and how to resolve it.
        detail: String,
    },

    /// A configuration file given explicitly (`--conf`, `PRIMACY_CONF_DIR`) does not exist.
    #[error("configuration file {} does not exist (the directory was given by {given_by})", path.display())]
    FileMissing {
        /// The file looked for.
        path: PathBuf,
        /// `--conf` or `PRIMACY_CONF_DIR`.
        given_by: String,
    },

    /// A configuration file could not be read.
    #[error("cannot read configuration file {}: {error}", path.display())]
    FileRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },

    /// A configuration file is not valid properties syntax.
    #[error("{}:{line}: {detail}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

impl ConfigError {
    /// The key (or, for file errors, the file) the error is about.
    pub fn key(&self) -> String {
        match self {
            ConfigError::Malformed { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Contradiction { key, .. } => key.clone(),
            ConfigError::FileMissing { path, .. }
            | ConfigError::FileRead { path, .. }
            | ConfigError::Syntax { path, .. } => path.display().to_string(),
        }
    }

    /// The message without the leading key, for `JournalError::Config`
    /// (whose own message starts with the key).
    pub fn detail(&self) -> String {
        match self {
            ConfigError::Malformed {
                value,
                origin,
                detail,
                ..
            }
            | ConfigError::Contradiction {
                value,
                origin,
                detail,
                ..
            } => format!("{value:?} (from {origin}) {detail}"),
            ConfigError::Missing { detail, .. } => format!("is not set: {detail}"),
            other => other.to_string(),
        }
    }
}

/// Every configuration error becomes `JournalError::Config` naming the key,
/// with the value and its source in the detail.
impl From<ConfigError> for JournalError {
    fn from(e: ConfigError) -> Self {
        JournalError::config(e.key(), e.detail())
    }
}
