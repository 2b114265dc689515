//! What every journal backend counts, in one handle the embedder registers.
//!
//! A backend takes a [`JournalMetrics`] in its configuration (a fresh,
//! unregistered one by default, so counting costs a few atomic adds and
//! nothing else) and calls the event methods (`batch_committed`,
//! `checkpoint_written`, `ufs_chunk_written`, `raft_leader_changed`, ...).
//! [`Instrumented`] wraps any [`JournalSystem`] and counts proposals, their
//! failures by reason and their commit latency, so backends do not each
//! time `propose`. The embedder calls [`JournalMetrics::register`] once to
//! expose everything in its `prometheus_client` registry; the names are
//! listed there and in the master's docs/operations.md.
//!
//! Clones share the counters (every metric is an `Arc` inside), so the
//! handle given to a backend and the one registered are the same numbers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::watch;

use crate::error::{JournalError, Result};
use crate::journal::{JournalStatus, JournalSystem, MemberStatus, Role};

/// Why a proposal failed, as the `reason` label of
/// `primacy_journal_proposals_failed_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FailureReason {
    /// This master is not (or no longer) the primary.
    not_primary,
    /// A newer primary fenced this one.
    fenced,
    /// The journal is shutting down.
    shutdown,
    /// The entry was refused before it was written (too large, malformed).
    invalid,
    /// Storage or transport failure; the outcome may be unknown.
    io,
    /// Timed out waiting for the journal.
    timeout,
    /// The journal found corruption and stopped.
    corrupt,
    /// Refused at once: too many proposals already waited for the journal.
    overloaded,
    /// Anything else.
    other,
}

impl FailureReason {
    /// The label for `e`.
    pub fn of(e: &JournalError) -> FailureReason {
        match e {
            JournalError::NotPrimary { .. } => FailureReason::not_primary,
            JournalError::Fenced { .. } => FailureReason::fenced,
            JournalError::Shutdown => FailureReason::shutdown,
            JournalError::InvalidEntry { .. } => FailureReason::invalid,
            JournalError::Io { .. } => FailureReason::io,
            JournalError::Timeout { .. } => FailureReason::timeout,
            JournalError::Corrupt { .. } => FailureReason::corrupt,
            JournalError::Overloaded { .. } => FailureReason::overloaded,
            _ => FailureReason::other,
        }
    }
}

/// Label set `{reason="..."}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why the proposal failed.
    pub reason: FailureReason,
}

/// Direction of a Raft snapshot transfer.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Direction {
    /// This member streamed a snapshot to a follower.
    sent,
    /// This member installed a snapshot a leader streamed to it.
    received,
}

/// Label set `{direction="sent"|"received"}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// Which way the snapshot went.
    pub direction: Direction,
}

/// The journal's counters and histograms. Cheap to clone; clones share.
#[derive(Clone, Debug)]
pub struct JournalMetrics {
    proposals: Counter,
    proposals_failed: Family<ReasonLabel, Counter>,
    commit_latency: Histogram,
    batch_entries: Histogram,
    checkpoints: Counter,
    checkpoint_duration: Histogram,
    ufs_chunk_writes: Counter,
    ufs_fencings: Counter,
    raft_leader_changes: Counter,
    raft_snapshot_transfers: Family<DirectionLabel, Counter>,
    pending_proposals: Gauge,
}

impl Default for JournalMetrics {
    fn default() -> Self {
        JournalMetrics {
            proposals: Counter::default(),
            proposals_failed: Family::default(),
            // 100 µs .. ~52 s: a local fsync to a slow object store.
            commit_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 20)),
            // 1 .. 32768 entries: group commit batches up to 4096 by default.
            batch_entries: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            checkpoints: Counter::default(),
            // 1 ms .. ~9 min.
            checkpoint_duration: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            ufs_chunk_writes: Counter::default(),
            ufs_fencings: Counter::default(),
            raft_leader_changes: Counter::default(),
            raft_snapshot_transfers: Family::default(),
            pending_proposals: Gauge::default(),
        }
    }
}

impl JournalMetrics {
    /// Registers every metric in `registry`, whose prefix the embedder
    /// chooses (the master uses `primacy`). Names below are without it:
    ///
    /// | name | type | meaning |
    /// |---|---|---|
    /// | `journal_proposals_total` | counter | proposals this master's journal acknowledged |
    /// | `journal_proposals_failed_total{reason}` | counter | proposals that failed, by [`FailureReason`] |
    /// | `journal_commit_latency_seconds` | histogram | propose call to durable and applied, acknowledged proposals only |
    /// | `journal_batch_entries` | histogram | entries per durable write (group commit) |
    /// | `journal_checkpoints_total` | counter | checkpoints (UFS) or snapshots (Raft) written here |
    /// | `journal_checkpoint_duration_seconds` | histogram | time to write one |
    /// | `ufs_chunk_writes_total` | counter | chunks this master created in the UFS folder |
    /// | `ufs_fencings_total` | counter | times this master found itself fenced by a newer primary |
    /// | `raft_leader_changes_total` | counter | leader changes this member observed |
    /// | `raft_snapshot_transfers_total{direction}` | counter | snapshots sent to or received from peers |
    /// | `journal_pending_proposals` | gauge | proposals waiting for the journal now (see [`crate::PendingGate`]) |
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "journal_proposals",
            "Proposals this master's journal acknowledged (durable and applied)",
            self.proposals.clone(),
        );
        registry.register(
            "journal_proposals_failed",
            "Proposals that failed, by reason",
            self.proposals_failed.clone(),
        );
        registry.register_with_unit(
            "journal_commit_latency",
            "Time from a propose call to its entry being durable and applied (acknowledged proposals)",
            Unit::Seconds,
            self.commit_latency.clone(),
        );
        registry.register(
            "journal_batch_entries",
            "Entries per durable journal write (group commit batch size)",
            self.batch_entries.clone(),
        );
        registry.register(
            "journal_checkpoints",
            "Checkpoints (UFS) or snapshots (Raft) this master wrote",
            self.checkpoints.clone(),
        );
        registry.register_with_unit(
            "journal_checkpoint_duration",
            "Time to write one checkpoint or snapshot",
            Unit::Seconds,
            self.checkpoint_duration.clone(),
        );
        registry.register(
            "ufs_chunk_writes",
            "Chunks this master created in the UFS journal folder",
            self.ufs_chunk_writes.clone(),
        );
        registry.register(
            "ufs_fencings",
            "Times this master found its UFS journal slot taken by a newer primary",
            self.ufs_fencings.clone(),
        );
        registry.register(
            "raft_leader_changes",
            "Raft leader changes this member observed",
            self.raft_leader_changes.clone(),
        );
        registry.register(
            "raft_snapshot_transfers",
            "Raft snapshots streamed to (sent) or installed from (received) peers",
            self.raft_snapshot_transfers.clone(),
        );
        registry.register(
            "journal_pending_proposals",
            "Proposals waiting for the journal now (queued or being written); at the configured maximum, new ones are refused as overloaded",
            self.pending_proposals.clone(),
        );
    }

    /// The gauge of waiting proposals, which a [`crate::PendingGate`] built
    /// with [`crate::PendingGate::with_metrics`] keeps up to date.
    pub fn pending_proposals(&self) -> Gauge {
        self.pending_proposals.clone()
    }

    /// A proposal was acknowledged `latency` after it was made.
    pub fn proposal_acknowledged(&self, latency: Duration) {
        self.proposals.inc();
        self.commit_latency.observe(latency.as_secs_f64());
    }

    /// A proposal failed with `e`.
    pub fn proposal_failed(&self, e: &JournalError) {
        self.proposals_failed
            .get_or_create(&ReasonLabel {
                reason: FailureReason::of(e),
            })
            .inc();
    }

    /// One durable write carried `entries` entries.
    pub fn batch_committed(&self, entries: usize) {
        self.batch_entries.observe(entries as f64);
    }

    /// A checkpoint or snapshot was written in `took`.
    pub fn checkpoint_written(&self, took: Duration) {
        self.checkpoints.inc();
        self.checkpoint_duration.observe(took.as_secs_f64());
    }

    /// UFS: this master created a chunk.
    pub fn ufs_chunk_written(&self) {
        self.ufs_chunk_writes.inc();
    }

    /// UFS: this master was fenced.
    pub fn ufs_fenced(&self) {
        self.ufs_fencings.inc();
    }

    /// Raft: the leader this member knows changed.
    pub fn raft_leader_changed(&self) {
        self.raft_leader_changes.inc();
    }

    /// Raft: a snapshot went `direction`.
    pub fn raft_snapshot_transferred(&self, direction: Direction) {
        self.raft_snapshot_transfers
            .get_or_create(&DirectionLabel { direction })
            .inc();
    }

    /// Proposals acknowledged so far (for tests and status pages).
    pub fn proposals_acknowledged(&self) -> u64 {
        self.proposals.get()
    }
}

/// A journal whose proposals are counted and timed in a [`JournalMetrics`];
/// everything else passes straight through.
pub struct Instrumented {
    inner: Arc<dyn JournalSystem>,
    metrics: JournalMetrics,
}

impl Instrumented {
    /// Wraps `inner`, counting into `metrics`.
    pub fn new(inner: Arc<dyn JournalSystem>, metrics: JournalMetrics) -> Instrumented {
        Instrumented { inner, metrics }
    }
}

#[async_trait]
impl JournalSystem for Instrumented {
    fn role(&self) -> watch::Receiver<Role> {
        self.inner.role()
    }

    async fn propose(&self, entry: Bytes) -> Result<Bytes> {
        let started = Instant::now();
        let result = self.inner.propose(entry).await;
        match &result {
            Ok(_) => self.metrics.proposal_acknowledged(started.elapsed()),
            Err(e) => self.metrics.proposal_failed(e),
        }
        result
    }

    async fn read_barrier(&self) -> Result<()> {
        self.inner.read_barrier().await
    }

    async fn checkpoint(&self) -> Result<u64> {
        self.inner.checkpoint().await
    }

    fn status(&self) -> JournalStatus {
        self.inner.status()
    }

    async fn members(&self) -> Result<Vec<MemberStatus>> {
        self.inner.members().await
    }

    async fn transfer_leadership(&self, to: &str) -> Result<()> {
        self.inner.transfer_leadership(to).await
    }

    async fn add_member(&self, id: &str, address: &str) -> Result<()> {
        self.inner.add_member(id, address).await
    }

    async fn remove_member(&self, id: &str) -> Result<()> {
        self.inner.remove_member(id).await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    /// A journal whose every optional method answers differently from the
    /// trait's default, so a wrapper that forgets to forward one is caught.
    struct Distinct(watch::Sender<Role>);

    #[async_trait]
    impl JournalSystem for Distinct {
        fn role(&self) -> watch::Receiver<Role> {
            self.0.subscribe()
        }
        async fn propose(&self, entry: Bytes) -> Result<Bytes> {
            Ok(entry)
        }
        async fn read_barrier(&self) -> Result<()> {
            Ok(())
        }
        async fn checkpoint(&self) -> Result<u64> {
            Ok(41)
        }
        fn status(&self) -> JournalStatus {
            JournalStatus {
                backend: "DISTINCT",
                role: Role::Standby,
                epoch: 0,
                last_applied: 0,
                last_durable: 0,
                last_checkpoint: None,
                leader_address: None,
                members: Vec::new(),
                location: String::new(),
            }
        }
        async fn members(&self) -> Result<Vec<MemberStatus>> {
            Ok(vec![MemberStatus {
                id: "queue-head".into(),
                address: String::new(),
                rpc_address: None,
                role: "CONTENDER".into(),
                applied: None,
            }])
        }
        async fn transfer_leadership(&self, _to: &str) -> Result<()> {
            Ok(())
        }
        async fn add_member(&self, _id: &str, _address: &str) -> Result<()> {
            Ok(())
        }
        async fn remove_member(&self, _id: &str) -> Result<()> {
            Ok(())
        }
        async fn shutdown(&self) {}
    }

    #[tokio::test]
    async fn the_wrapper_forwards_every_method() {
        let (tx, _) = watch::channel(Role::Standby);
        let j = Instrumented::new(Arc::new(Distinct(tx)), JournalMetrics::default());
        assert_eq!(
            j.propose(Bytes::from_static(b"x")).await.ok(),
            Some(Bytes::from_static(b"x"))
        );
        assert!(j.read_barrier().await.is_ok());
        assert_eq!(j.checkpoint().await.ok(), Some(41));
        assert_eq!(j.status().backend, "DISTINCT");
        let members = j.members().await.unwrap_or_default();
        assert_eq!(members.first().map(|m| m.id.as_str()), Some("queue-head"));
        assert!(j.transfer_leadership("m2").await.is_ok());
        assert!(j.add_member("4", "h:1").await.is_ok());
        assert!(j.remove_member("4").await.is_ok());
    }

    #[test]
    fn registered_names_carry_the_prefix_and_clones_share_counts() {
        let m = JournalMetrics::default();
        let mut registry = Registry::with_prefix("primacy");
        m.register(&mut registry);
        let twin = m.clone();
        twin.proposal_acknowledged(Duration::from_millis(3));
        twin.proposal_failed(&JournalError::NotPrimary { leader_hint: None });
        twin.batch_committed(7);
        twin.ufs_chunk_written();
        twin.raft_snapshot_transferred(Direction::sent);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        assert!(text.contains("primacy_journal_proposals_total 1"), "{text}");
        assert!(
            text.contains("primacy_journal_proposals_failed_total{reason=\"not_primary\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("primacy_journal_commit_latency_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("primacy_journal_batch_entries_sum 7"),
            "{text}"
        );
        assert!(text.contains("primacy_ufs_chunk_writes_total 1"), "{text}");
        assert!(
            text.contains("primacy_raft_snapshot_transfers_total{direction=\"sent\"} 1"),
            "{text}"
        );
        assert_eq!(m.proposals_acknowledged(), 1);
    }
}
