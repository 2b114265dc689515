//! Tests of the configuration layer. The environment is always a map
//! passed in, never the process's, so tests never race.

use std::collections::BTreeMap;

use journal_core::JournalError;

use super::*;

mod choice;
mod sources;
mod store_options;

pub(super) fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn conf_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SITE_FILE), text).unwrap();
    dir
}

pub(super) fn cfg(pairs: &[(&str, &str)]) -> MasterConfig {
    MasterConfig::from_pairs(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

/// Asserts `r` failed with an error about `key` whose message holds `value`.
pub(super) fn assert_names<T: std::fmt::Debug>(r: Result<T, ConfigError>, key: &str, value: &str) {
    match r {
        Err(e) => {
            assert_eq!(e.key(), key, "{e}");
            assert!(e.to_string().contains(value), "{e} does not show {value:?}");
            match JournalError::from(e) {
                JournalError::Config { key: k, detail } => {
                    assert_eq!(k, key);
                    assert!(detail.contains(value), "{detail}");
                }
                other => panic!("{other:?}"),
            }
        }
        Ok(v) => panic!("{key}={value}: expected an error, got {v:?}"),
    }
}
