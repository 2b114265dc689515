//! Making your own state machine highly available: one `use` line, one
//! configuration, one call.
//!
//! You write a deterministic [`StateMachine`]; [`Replicated::open`] runs it
//! on the journal the configuration chooses (Alluxio's keys, see
//! `docs/configuration.md`): the embedded Raft journal, the UFS journal
//! with ZooKeeper, or a single UFS master. Switching between them is a
//! change of properties, not of code. Every member of the group is one
//! `Replicated` (usually one per process); exactly one of them is primary
//! at a time, and only the primary takes proposals and linearizable reads.
//!
//! The life of a member:
//! 1. [`format()`] the journal of a new deployment (UFS: the shared
//!    folder; embedded: each member's own directory). It leaves a journal
//!    already formatted for this deployment alone, so every member of a new
//!    deployment may call it; it cannot tell a new deployment from a lost
//!    one, though (see its caveat), so it is not a step of every start.
//! 2. [`Replicated::open`]: the member starts as a standby, replays the
//!    journal and joins the election; it returns at once.
//! 3. [`Replicated::wait_primary`] (or watch [`Replicated::role`]): primacy
//!    is reported only after this member caught up with everything
//!    committed before its election.
//! 4. [`Replicated::propose`] entries on the primary; [`Replicated::read`]
//!    the state after a read barrier. A standby answers `NotPrimary`, with
//!    the primary's address when known.
//! 5. [`Replicated::shutdown`].
//!
//! Check the machine itself with `journal_core::testkit::check_state_machine`
//! (feature `testkit`): determinism, snapshot and restore.
//!
//! ```
//! use master::embed::*;
//! # use std::io::{Read, Write};
//!
//! /// The state machine: a counter. `apply` must be deterministic.
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
//!         self.0 += entry.len() as u64;
//!         Bytes::from(self.0.to_string())
//!     }
//!     fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
//!         out.write_all(&self.0.to_le_bytes())
//!     }
//!     fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
//!         let mut word = [0; 8];
//!         input.read_exact(&mut word)?;
//!         self.0 = u64::from_le_bytes(word);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let folder = format!("file://{}", dir.path().display());
//! // A single master on a local folder; add `alluxio.zookeeper.*` for a
//! // highly available group, or `alluxio.master.journal.type=EMBEDDED`
//! // and `alluxio.master.embedded.journal.addresses` for Raft.
//! let config = MasterConfig::from_pairs(&[("alluxio.master.journal.folder", folder.as_str())])?;
//! format(&config).await?;
//! let counter = Replicated::open(&config, Counter::default()).await?;
//! counter.wait_primary(std::time::Duration::from_secs(30)).await?;
//! assert_eq!(counter.propose("abc").await?, Bytes::from("3"));
//! assert_eq!(counter.read(|c| c.0).await?, 3);
//! counter.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::backend;

pub use crate::config::{Backend, LoadOptions, MasterConfig};
pub use journal_core::{
    shared, wait_for_any_primary, Bytes, FrozenState, JournalError, JournalStatus, JournalSystem,
    Result, Role, Shared, StateMachine,
};

/// One member of a group that replicates the state machine `S`: the
/// journal the configuration chose, driving this member's copy of `S`.
///
/// Guarantees (from the journal): entries are applied to every member's
/// `S` in the same order, each once; a proposal acknowledged by
/// [`Replicated::propose`] is durable and survives the loss of the primary;
/// [`Replicated::read`] sees every acknowledged proposal. Cloning is cheap
/// and clones share the member (hand one to each task that serves).
pub struct Replicated<S: StateMachine> {
    journal: Arc<dyn JournalSystem>,
    machine: Shared<S>,
    backend: Backend,
}

impl<S: StateMachine> Clone for Replicated<S> {
    fn clone(&self) -> Self {
        Replicated {
            journal: self.journal.clone(),
            machine: self.machine.clone(),
            backend: self.backend,
        }
    }
}

impl<S: StateMachine> std::fmt::Debug for Replicated<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicated")
            .field("backend", &self.backend)
            .field("role", &*self.journal.role().borrow())
            .finish_non_exhaustive()
    }
}

impl<S: StateMachine> Replicated<S> {
    /// Opens this member's journal as `config` chooses
    /// ([`MasterConfig::backend`]) and hands it `machine`, which must be
    /// fresh (the journal restores the newest snapshot into it and replays
    /// the entries after it). Returns as soon as the journal runs, as a
    /// standby: wait for [`Replicated::wait_primary`] before proposing.
    ///
    /// Never formats. Errors: `Config` naming the key, value and source
    /// for a malformed or contradictory configuration; `Unformatted` for a
    /// journal nobody formatted ([`format()`] first); `ForeignJournal` for
    /// another deployment's; the backend's `Io` and `Corrupt`.
    pub async fn open(config: &MasterConfig, machine: S) -> Result<Replicated<S>> {
        let backend = config.backend()?;
        let machine = shared(machine);
        let journal = backend::open_journal(config, machine.clone()).await?;
        Ok(Replicated {
            journal,
            machine,
            backend,
        })
    }

    /// Waits until this member is primary, at most `timeout`; returns the
    /// epoch of its primacy. Errors: `Timeout`; `Shutdown` when the journal
    /// is gone (a journal that was shut down but still reports standby
    /// gives `Timeout`).
    pub async fn wait_primary(&self, timeout: Duration) -> Result<u64> {
        journal_core::wait_for_primary(&mut self.journal.role(), timeout).await
    }

    /// True while this member is primary (it may lose primacy right after;
    /// proposals and reads check again).
    pub fn is_primary(&self) -> bool {
        let role = self.journal.role();
        // A journal that is gone keeps its last value, which may be primary.
        role.has_changed().is_ok() && role.borrow().is_primary()
    }

    /// A watch of this member's role, for [`wait_for_any_primary`] or to
    /// react to gaining and losing primacy.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.journal.role()
    }

    /// Appends `entry` to the journal and returns `S::apply`'s output once
    /// the entry is durable and applied on this member.
    ///
    /// Primary only: a standby answers `NotPrimary` with the primary's
    /// address when known. `NotPrimary` or `Fenced` mean the entry was not
    /// acknowledged; it may still have reached the log, so an entry that is
    /// retried must be idempotent (carry a request id the machine checks).
    pub async fn propose(&self, entry: impl Into<Bytes>) -> Result<Bytes> {
        self.journal.propose(entry.into()).await
    }

    /// Runs `query` on the state after a read barrier: the answer reflects
    /// every proposal acknowledged before the call (a linearizable read).
    /// Primary only (`NotPrimary` on a standby).
    pub async fn read<R>(&self, query: impl FnOnce(&S) -> R) -> Result<R> {
        self.journal.read_barrier().await?;
        Ok(query(&self.machine.read()))
    }

    /// Runs `query` on this member's state as applied so far, without asking
    /// anyone: works on standbys, may miss the latest entries (a stale read).
    pub fn read_local<R>(&self, query: impl FnOnce(&S) -> R) -> R {
        query(&self.machine.read())
    }

    /// The journal's view: role, applied and durable positions, primary's
    /// address, members, location.
    pub fn status(&self) -> JournalStatus {
        self.journal.status()
    }

    /// The journal chosen by the configuration.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The journal itself, for what this type does not wrap (checkpoints,
    /// membership changes, leadership transfer).
    pub fn journal(&self) -> &Arc<dyn JournalSystem> {
        &self.journal
    }

    /// The shared state machine the journal applies to. Hold the read lock
    /// briefly: applying waits for it.
    pub fn machine(&self) -> &Shared<S> {
        &self.machine
    }

    /// Leaves the election and stops the journal; pending proposals fail
    /// with `Shutdown`. Idempotent. The other members elect a new primary
    /// (at once when this one was primary and leaves cleanly; within the
    /// election or session timeout when a member dies without it).
    pub async fn shutdown(&self) {
        self.journal.shutdown().await;
    }
}

/// Formats the journal `config` chooses for a new deployment, unless it is
/// already formatted for this one. Returns `true` when it formatted now.
///
/// UFS: the shared folder (created if absent) gets a FORMAT marker with
/// `alluxio.master.cluster.id` or a generated id; later calls from the
/// other members find it and return `false`. Embedded: this member's own
/// directory (every member formats its own, as a founder of the group
/// `alluxio.master.embedded.journal.addresses` lists).
///
/// Caveat: it cannot tell a new deployment from a lost one. Called at every
/// start, it would quietly begin an empty journal where a mount failed or
/// a disk was replaced; call it where an operator would run
/// `primacy format`, when the deployment is created.
///
/// Errors: `ForeignJournal` for a folder holding something else or another
/// cluster's journal (nothing is removed), `Config`, `Io`.
pub async fn format(config: &MasterConfig) -> Result<bool> {
    if backend::is_formatted(config).await? {
        return Ok(false);
    }
    match backend::format(config, false).await {
        Ok(()) => Ok(true),
        // Another member formatted the shared folder between the two calls.
        Err(JournalError::AlreadyFormatted { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
