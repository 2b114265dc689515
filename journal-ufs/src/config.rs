//! Settings of a UFS journal.

use std::collections::BTreeMap;
use std::time::Duration;

use journal_core::{JournalMetrics, PendingLimits};

/// How a [`crate::UfsJournal`] runs. Defaults are the ones
/// docs/configuration.md lists for the master. Its `Debug` shows the store
/// options' keys only and the folder with credentials masked
/// ([`redacted_options`]).
#[derive(Clone)]
pub struct UfsJournalConfig {
    /// The journal folder URL (`alluxio.master.journal.folder`).
    pub folder: String,
    /// Options of the folder's object store
    /// (`alluxio.master.journal.ufs.option.<key>`, see
    /// [`crate::store::open_folder_with`]); empty by default.
    pub store_options: BTreeMap<String, String>,
    /// This master's RPC address, advertised to the election and written
    /// into claims.
    pub address: String,
    /// The cluster id this master belongs to; when set, a folder formatted for
    /// another cluster is refused with `ForeignJournal`.
    pub cluster_id: Option<String>,
    /// How long a standby sleeps when the next chunk is absent
    /// (`alluxio.master.journal.tailer.sleep.time`).
    pub tailer_sleep: Duration,
    /// Most entries one group-commit chunk carries.
    pub max_batch_entries: usize,
    /// Most entry bytes one group-commit chunk carries (a single larger entry
    /// still goes alone).
    pub max_batch_bytes: usize,
    /// Applied entries between automatic checkpoints
    /// (`alluxio.master.journal.checkpoint.period.entries`).
    pub checkpoint_period_entries: u64,
    /// Whether the primary writes automatic checkpoints itself. True for a
    /// single master; in HA the standbys write them so the primary never pauses.
    pub primary_writes_checkpoints: bool,
    /// Newest checkpoints kept by garbage collection
    /// (`primacy.master.journal.checkpoint.retention`); 0 is refused at open.
    pub checkpoint_retention: usize,
    /// Pause before retrying after a storage error.
    pub retry_backoff: Duration,
    /// How many proposals (and entry bytes) may wait for the journal at once
    /// (`primacy.master.journal.max.pending.proposals` and `.bytes`); beyond
    /// them `propose` fails at once with `Overloaded`.
    pub pending: PendingLimits,
    /// Storage errors of one kind logged at most once per this interval
    /// (the rest are counted into the next message), so an outage of
    /// minutes does not flood the log.
    pub error_log_interval: Duration,
    /// Age after which a staging file (`<name>#<digits>`, left in a local
    /// folder by a write killed mid-way) is deleted by the primary
    /// (`primacy.master.journal.ufs.staging.grace`).
    pub staging_grace: Duration,
    /// Where chunk writes, batch sizes, fencings and checkpoints are counted
    /// (unregistered by default; the embedder registers its own).
    pub metrics: JournalMetrics,
}

impl UfsJournalConfig {
    /// Defaults for a journal in `folder` served at `address`.
    pub fn new(folder: impl Into<String>, address: impl Into<String>) -> Self {
        UfsJournalConfig {
            folder: folder.into(),
            store_options: BTreeMap::new(),
            address: address.into(),
            cluster_id: None,
            tailer_sleep: Duration::from_millis(20),
            max_batch_entries: 4096,
            max_batch_bytes: 8 << 20,
            checkpoint_period_entries: 2_000_000,
            primary_writes_checkpoints: true,
            checkpoint_retention: 2,
            retry_backoff: Duration::from_millis(200),
            pending: PendingLimits::default(),
            error_log_interval: Duration::from_secs(10),
            staging_grace: Duration::from_secs(3600),
            metrics: JournalMetrics::default(),
        }
    }
}

/// `options` with every value replaced by `***`, for `Debug` output: store
/// options hold credentials (`aws.secretKey`, `aws_secret_access_key`,
/// session tokens, ...) under names no fixed list covers, and a `Debug`
/// print of a configuration ends up in logs.
pub fn redacted_options(options: &BTreeMap<String, String>) -> BTreeMap<&str, &'static str> {
    options.keys().map(|k| (k.as_str(), "***")).collect()
}

impl std::fmt::Debug for UfsJournalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UfsJournalConfig")
            .field("folder", &crate::store::redact_url(&self.folder))
            .field("store_options", &redacted_options(&self.store_options))
            .field("address", &self.address)
            .field("cluster_id", &self.cluster_id)
            .field("tailer_sleep", &self.tailer_sleep)
            .field("max_batch_entries", &self.max_batch_entries)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("checkpoint_period_entries", &self.checkpoint_period_entries)
            .field(
                "primary_writes_checkpoints",
                &self.primary_writes_checkpoints,
            )
            .field("checkpoint_retention", &self.checkpoint_retention)
            .field("retry_backoff", &self.retry_backoff)
            .field("metrics", &self.metrics)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_store_option_values_or_url_credentials() {
        let mut cfg = UfsJournalConfig::new("s3a://AKIDLEAK:SECRETLEAK@bucket/j", "m:1");
        cfg.store_options
            .insert("aws.secretKey".into(), "SECRETLEAK".into());
        cfg.store_options
            .insert("aws_session_token".into(), "TOKENLEAK".into());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("LEAK"), "{shown}");
        assert!(shown.contains("aws.secretKey"), "{shown}");
        assert!(shown.contains("s3a://***@bucket/j"), "{shown}");
    }
}
