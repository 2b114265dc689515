//! Each journal crate's config, built field by field from the typed
//! settings (one parser for the whole service), then checked with the
//! crate's own `validate` so its rules hold; a rejection is reported with
//! the value and source of the key it names.

use std::path::PathBuf;

use election_zk::ZkConfig;
use journal_core::{JournalError, PendingLimits};
use journal_raft::RaftJournalConfig;
use journal_ufs::UfsJournalConfig;

use super::error::ConfigError;
use super::registry as r;
use super::settings::MasterConfig;

impl MasterConfig {
    /// The UFS journal's config: folder and its store options, this
    /// master's RPC address, cluster id, tailer sleep, checkpoint period and
    /// retention.
    /// `primary_writes_checkpoints` is left to `master::ha`, which sets it
    /// by mode.
    pub fn ufs_journal_config(&self) -> Result<UfsJournalConfig, ConfigError> {
        let mut cfg = UfsJournalConfig::new(self.journal_folder()?, self.rpc_address());
        cfg.cluster_id = self.cluster_id.clone();
        cfg.store_options = self.journal.store_options.clone();
        cfg.tailer_sleep = self.journal.tailer_sleep;
        if self.journal.checkpoint_period_entries == 0 {
            return Err(self.malformed(r::CHECKPOINT_PERIOD, "must be at least 1"));
        }
        cfg.checkpoint_period_entries = self.journal.checkpoint_period_entries;
        cfg.checkpoint_retention = usize::try_from(self.journal.checkpoint_retention)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                self.malformed(
                    r::CHECKPOINT_RETENTION,
                    "must be at least 1 (the newest checkpoint is always kept)",
                )
            })?;
        cfg.pending = self.pending_limits()?;
        if self.journal.staging_grace < std::time::Duration::from_secs(1) {
            return Err(self.malformed(
                r::STAGING_GRACE,
                "must be at least 1s (a younger staging file may be a write still under way)",
            ));
        }
        cfg.staging_grace = self.journal.staging_grace;
        Ok(cfg)
    }

    /// The bound on proposals waiting for the journal, shared by both backends.
    pub fn pending_limits(&self) -> Result<PendingLimits, ConfigError> {
        let max_proposals = usize::try_from(self.journal.max_pending_proposals)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| self.malformed(r::MAX_PENDING_PROPOSALS, "must be at least 1"))?;
        let max_bytes = usize::try_from(self.journal.max_pending_bytes)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| self.malformed(r::MAX_PENDING_BYTES, "must be at least 1 byte"))?;
        Ok(PendingLimits {
            max_proposals,
            max_bytes,
        })
    }

    /// The ZooKeeper election's config when `alluxio.zookeeper.enabled`,
    /// `None` otherwise.
    pub fn zk_config(&self) -> Result<Option<ZkConfig>, ConfigError> {
        let z = &self.zookeeper;
        if !z.enabled {
            return Ok(None);
        }
        let mut cfg = ZkConfig::new(z.address.join(","));
        cfg.election_path = z.election_path.clone();
        cfg.leader_path = z.leader_path.clone();
        cfg.session_timeout = z.session_timeout;
        cfg.connection_timeout = z.connection_timeout;
        cfg.policy = z.policy;
        cfg.validate().map_err(|e| self.crate_rejected(e))?;
        Ok(Some(cfg))
    }

    /// The embedded journal's config: this member at `hostname:port`, the
    /// initial members (this master alone when the list is unset), the
    /// local data directory (`file://` stripped), timeouts and sizes, and
    /// this master's RPC address ([`MasterConfig::rpc_address`]), which the
    /// journal advertises to the group so every member names the primary's
    /// RPC address in `NotPrimary` hints and `status().leader_address`.
    pub fn raft_journal_config(&self) -> Result<RaftJournalConfig, ConfigError> {
        let e = &self.embedded;
        let host = self
            .hostname
            .as_deref()
            .ok_or_else(|| ConfigError::Missing {
                key: r::MASTER_HOSTNAME.to_string(),
                detail: "the embedded journal needs this master's host name".to_string(),
            })?;
        let address = format!("{host}:{}", e.port);
        let members = if e.addresses.is_empty() {
            vec![address.clone()]
        } else {
            e.addresses.clone()
        };
        let mut cfg = RaftJournalConfig::new(address, members, self.raft_data_dir()?);
        cfg.id = e.member_id;
        cfg.election_timeout_min = e.election_timeout_min;
        cfg.election_timeout_max = e.election_timeout_max;
        cfg.snapshot_chunk_size = usize::try_from(e.snapshot_chunk_size)
            .map_err(|_| self.malformed(r::SNAPSHOT_CHUNK, "is too large"))?;
        cfg.max_message_bytes = usize::try_from(e.max_message_size)
            .map_err(|_| self.malformed(r::MAX_MESSAGE, "is too large"))?;
        cfg.checkpoint_period_entries = self.journal.checkpoint_period_entries;
        cfg.cluster_id = self.cluster_id.clone();
        cfg.rpc_address = Some(self.rpc_address());
        cfg.pending = self.pending_limits()?;
        cfg.secret = self.security.secret.clone();
        cfg.require_auth = self.security.peer_auth;
        cfg.connect_via = e.connect_via.iter().cloned().collect();
        cfg.validate().map_err(|e| self.crate_rejected(e))?;
        Ok(cfg)
    }

    /// The embedded journal's local directory.
    pub fn raft_data_dir(&self) -> Result<PathBuf, ConfigError> {
        let folder = self.journal_folder()?;
        let path = folder.strip_prefix("file://").unwrap_or(&folder);
        if path.is_empty() || path.contains("://") {
            return Err(self.contradiction(
                r::JOURNAL_FOLDER,
                "is not a local directory (file:///path or /path)",
            ));
        }
        Ok(PathBuf::from(path))
    }

    /// A crate's `validate` refused a value: report it with the value and
    /// source of the key it names (the crates name our keys).
    fn crate_rejected(&self, e: JournalError) -> ConfigError {
        match e {
            JournalError::Config { key, detail } => {
                let key = r::lookup(&key).map_or(key, |(_, canonical)| canonical);
                self.malformed(&key, detail)
            }
            other => self.malformed("configuration", other.to_string()),
        }
    }
}
