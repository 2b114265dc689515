//! Settings of a UFS journal.

use std::collections::BTreeMap;
use std::time::Duration;

use journal_core::{JournalMetrics, PendingLimits};

/// How a [`crate::UfsJournal`] runs. Defaults are the ones
/// docs/configuration.md lists for the master.
#[derive(Debug, Clone)]
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
