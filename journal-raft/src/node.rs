//! The Raft driver: one OS thread owns the `RawNode`, ticks it, steps peer
//! messages into it, and handles each `Ready` in raft-rs's order:
//! leader messages out, snapshot installed, committed entries applied,
//! new entries + hard state written to raft-engine with fsync, then the
//! messages that depend on persistence, then `advance` and the light ready.
//!
//! Group commit: every command queued while the previous `Ready` was being
//! handled is taken before the next one, so concurrent proposals share one
//! append and one fsync.

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use journal_core::progress::{Progress, ProgressReader, ProgressWriter, Unit};
use journal_core::snapshot::{
    restore_snapshot, write_frozen_snapshot, write_snapshot, SnapshotMeta, SnapshotStats,
    DEFAULT_SNAPSHOT_FRAME,
};
use journal_core::{
    JournalError, JournalStatus, MemberStatus, PendingPermit, Result, Role, SharedStateMachine,
};
use parking_lot::Mutex;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeV2, ConfState, Entry, EntryType, HardState, Message, MessageType,
    Snapshot, SnapshotMetadata,
};
use raft::{RawNode, SnapshotStatus, StateRole, Storage as _};
use tokio::sync::{oneshot, watch};

use crate::config::RaftJournalConfig;
use crate::storage::{decode_peers, snapshot_file, sync_dir, Peer, Peers, RaftStorage};
use crate::transport::{spawn_peer, Outbound, PeerSender, TransportConfig};
use crate::validate::{check, log_term, DropLog, LocalView};

/// Commands to the driver thread.
pub(crate) enum Cmd {
    /// Propose an entry; the reply carries the state machine's output.
    Propose(Bytes, oneshot::Sender<Result<Bytes>>, PendingPermit),
    /// ReadIndex barrier.
    Read(oneshot::Sender<Result<()>>),
    /// A message from a peer.
    Step(Box<Message>),
    /// A peer's `MsgSnapshot` and the verified file it streamed, still under
    /// its temporary name; the driver gives it the snapshot's name only if
    /// raft-rs restores it, and deletes it otherwise.
    StepSnapshot(Box<Message>, PathBuf),
    /// Take a snapshot now.
    Checkpoint(oneshot::Sender<Result<u64>>),
    /// Propose a membership change.
    ConfChange {
        cc: ConfChangeV2,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Hand leadership to a member.
    Transfer(u64, oneshot::Sender<Result<()>>),
    /// A peer could not be reached.
    Unreachable(u64),
    /// Outcome of a snapshot transfer.
    SnapshotReport(u64, SnapshotStatus),
    /// Create the initial voter set: the bootstrap handshake found enough
    /// initial members without state (see `bootstrap.rs`).
    /// The founders (address → incarnation) it saw with no state are
    /// recorded first, so it can vouch for them later.
    Bootstrap(Peers, std::collections::BTreeMap<String, u64>),
    /// Stop with this error (the handshake found this member was wiped).
    Fatal(JournalError),
    /// A peer's advertised address, for a sender this member has no
    /// address for yet (a new member answering a leader it never met).
    Learn(u64, String),
    /// The snapshot file at `index`/`term` failed verification before it
    /// was sent to `to`.
    SnapshotDamaged {
        to: u64,
        index: u64,
        term: u64,
        error: JournalError,
    },
    /// The background writer finished the snapshot file at `index`.
    SnapshotWritten { index: u64, result: Result<u64> },
    /// Stop the driver.
    Shutdown,
}

/// What the API side reads without asking the driver.
pub(crate) struct Shared {
    pub status: Mutex<JournalStatus>,
    /// Progress of each member as the leader sees it: (id, matched).
    pub progress: Mutex<HashMap<u64, u64>>,
    pub conf: Mutex<ConfState>,
    pub leader_id: Mutex<u64>,
    pub failure: Mutex<Option<String>>,
    /// raft-engine writes made with fsync (group commit: many proposals share one).
    pub synced_writes: std::sync::atomic::AtomicU64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: std::sync::atomic::AtomicU64,
    /// Event counters, shared with the peer server.
    pub counters: Arc<Counters>,
    /// The founders this member saw empty when it bootstrapped (address →
    /// format incarnation); the handshake vouches for them.
    pub founders: Mutex<std::collections::BTreeMap<String, u64>>,
    /// The address book (member id → peer address) the driver uses: the
    /// replicated peer map; address lookups go through it.
    pub book: Mutex<Peers>,
}

/// Counts of events tests and operators look for; only ever incremented.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Peer messages dropped before raft-rs saw them (impossible, unknown
    /// sender, unparsable).
    pub rejected_messages: AtomicU64,
    /// Panics raft-rs raised inside `step` that the driver survived.
    pub step_panics: AtomicU64,
    /// Snapshot streams this member started sending.
    pub snapshots_sent: AtomicU64,
    /// Local snapshot files found damaged before they were sent.
    pub corrupt_snapshots: AtomicU64,
    /// Snapshot files whose writing started / ended (either way).
    pub snapshot_writes_started: AtomicU64,
    /// See `snapshot_writes_started`.
    pub snapshot_writes_finished: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::SeqCst);
    }
}

pub(crate) struct Driver {
    pub node: RawNode<RaftStorage>,
    pub id: u64,
    pub cfg: RaftJournalConfig,
    pub machine: SharedStateMachine,
    pub rx: Receiver<Cmd>,
    pub tx: Sender<Cmd>,
    pub rt: tokio::runtime::Handle,
    pub shutdown: watch::Receiver<bool>,
    pub role: Arc<watch::Sender<Role>>,
    pub shared: Arc<Shared>,
    pub applied: u64,
    /// Conf changes at or below this index are already in the stored conf state.
    pub conf_index: u64,
    pub peers: HashMap<u64, PeerSender>,
    pub nonce: u64,
    pub next_id: u64,
    /// Proposals waiting to be committed, each with its slot in the
    /// journal's pending bound.
    pub proposals: HashMap<u64, (oneshot::Sender<Result<Bytes>>, PendingPermit)>,
    pub conf_waiters: HashMap<u64, oneshot::Sender<Result<()>>>,
    pub reads: HashMap<u64, oneshot::Sender<Result<()>>>,
    pub ready_reads: VecDeque<(u64, oneshot::Sender<Result<()>>)>,
    pub primary: bool,
    pub leader: u64,
    pub state: StateRole,
    /// Take a snapshot once the current `Ready` is handled: a member joined
    /// (it must start from a snapshot that lists it), or this leader never
    /// took one (so its log does not start at index 1, where the initial
    /// membership is not written down).
    pub snapshot_pending: bool,
    /// A refused message was logged since this member last lacked a membership.
    pub uninit_logged: bool,
    /// This member was formatted JOIN: its id is new, so it can be in a
    /// leader's configuration only because an operator added it after
    /// this formatting (as a learner first).
    pub join_member: bool,
    /// Addresses peers advertised for ids the replicated map does not hold.
    pub learned: HashMap<u64, String>,
    /// When this member last proposed its RPC address to the group, and
    /// the log index of that proposal (`maybe_announce_rpc`).
    pub announce_at: Option<Instant>,
    pub announce_index: u64,
    /// Membership changes waiting for that announcement to be applied.
    pub deferred_conf: Vec<(ConfChangeV2, oneshot::Sender<Result<()>>)>,
    /// raft-rs settings, to rebuild the `RawNode` from storage after a panic.
    pub raft_cfg: raft::Config,
    pub drops: DropLog,
    /// Snapshot work: the file being written, who waits for it, retries.
    pub snap: SnapshotWork,
    /// Progress of a long catch-up (replay at open, or behind a leader).
    pub catch_up: crate::catch_up::CatchUp,
    /// Snapshot files peers streamed, under their temporary names, by
    /// (index, term), until the next `Ready`: installed there or deleted.
    pub received_snapshots: HashMap<(u64, u64), PathBuf>,
    /// While leading: which members answered nothing for too long, so
    /// their links are reopened.
    pub links: crate::link_watch::LinkWatch,
}

/// Deletes a received snapshot file that will not be installed.
fn remove_received(file: &Path) {
    if let Err(e) = std::fs::remove_file(file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %file.display(), error = %e, "cannot delete a received snapshot that was not installed");
        }
    }
}

/// The one snapshot file being written in the background, if any.
pub(crate) struct SnapshotJob {
    index: u64,
    term: u64,
    conf_state: ConfState,
    compact_all: bool,
    cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
}

/// Snapshot bookkeeping of the driver.
#[derive(Default)]
pub(crate) struct SnapshotWork {
    job: Option<SnapshotJob>,
    /// A snapshot is wanted regardless of the period (raft-rs or a joining
    /// member asked, or the newest one is damaged), compacting everything.
    wanted: bool,
    /// `checkpoint()` callers: answered once a snapshot covers the index
    /// that was applied when they asked.
    waiters: Vec<(u64, oneshot::Sender<Result<u64>>)>,
    /// After a failed write, the next try waits until then.
    not_before: Option<Instant>,
}

fn ctx_bytes(nonce: u64, id: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&nonce.to_le_bytes());
    v.extend_from_slice(&id.to_le_bytes());
    v
}

fn ctx_id(nonce: u64, ctx: &[u8]) -> Option<u64> {
    if ctx.len() != 16 || ctx[..8] != nonce.to_le_bytes() {
        return None;
    }
    let mut w = [0u8; 8];
    w.copy_from_slice(&ctx[8..]);
    Some(u64::from_le_bytes(w))
}

fn raft_err(location: &str, e: raft::Error) -> JournalError {
    match e {
        raft::Error::Store(raft::StorageError::Other(inner)) => {
            JournalError::io(location, inner.to_string())
        }
        other => JournalError::io(location, other.to_string()),
    }
}

impl Driver {
    fn transport_cfg(&self) -> TransportConfig {
        TransportConfig {
            my_id: self.id,
            chunk_size: self.cfg.snapshot_chunk_size,
            max_message_bytes: self.cfg.max_message_bytes,
            identity: crate::bootstrap::Identity::of(&self.cfg),
            counters: self.shared.counters.clone(),
            metrics: self.cfg.metrics.clone(),
            auth: self.cfg.peer_credentials(),
            stall: crate::transport::STALL,
        }
    }

    /// The address book: replicated peers, falling back to the configured initial members.
    fn address_book(&self) -> Peers {
        // Once the member knows a membership, the replicated map is the
        // truth (a configured address may now belong to another id: a
        // member that rejoined with a new one). Before that the configured
        // list is only a contact list for the initial members.
        let replicated = self.node.store().peers();
        let mut book: Peers = if replicated.is_empty() {
            self.cfg
                .addresses
                .iter()
                .map(|a| (crate::config::member_id_for(a), Peer::at(a.clone())))
                .collect()
        } else {
            replicated.clone()
        };
        for (id, a) in &self.learned {
            book.entry(*id).or_insert_with(|| Peer::at(a.clone()));
        }
        book
    }

    /// Starts senders for new peers and stops those of removed ones.
    pub fn sync_peers(&mut self) {
        let book = self.address_book();
        self.peers
            .retain(|id, p| book.get(id).map(|b| &b.address) == Some(&p.address));
        for (id, peer) in book {
            let addr = peer.address;
            if id == self.id || self.peers.contains_key(&id) {
                continue;
            }
            let dial = self
                .cfg
                .connect_via
                .get(&addr)
                .cloned()
                .unwrap_or_else(|| addr.clone());
            let sender = spawn_peer(
                &self.rt,
                self.transport_cfg(),
                id,
                addr,
                dial,
                self.tx.clone(),
                self.shutdown.clone(),
            );
            self.peers.insert(id, sender);
        }
    }

    /// The leader's RPC address as the replicated peer map knows it; `None`
    /// while it is not known here (never its peer address in its place).
    /// Without `rpc_address` configured on this member: the leader's peer
    /// address, as before RPC addresses were replicated.
    fn leader_hint(&self) -> Option<String> {
        // Pointing a client back at this member (a leader not yet serving, or
        // one handing leadership away) would only make it bounce.
        if self.leader == 0 || self.leader == self.id {
            return None;
        }
        let book = self.address_book();
        let leader = book.get(&self.leader)?;
        match self.cfg.rpc_address {
            Some(_) => leader.rpc.clone(),
            None => Some(leader.address.clone()),
        }
    }

    /// This member's RPC address as configured (trimmed), if any.
    fn own_rpc(&self) -> Option<String> {
        self.cfg
            .rpc_address
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
    }

    /// Once primary, makes sure the replicated peer map holds this member's
    /// RPC address (a founder whose handshake answer the others did not
    /// hear, a member added by id that did not answer, an RPC address
    /// changed across a restart): proposes a membership change that changes
    /// no membership (this voter added again) and whose context carries
    /// this member's entry. Retried every election timeout until applied.
    fn maybe_announce_rpc(&mut self) {
        if !self.primary {
            return;
        }
        let Some(rpc) = self.own_rpc() else {
            return;
        };
        let store = self.node.store();
        let Some(mine) = store.peers().get(&self.id) else {
            return;
        };
        if mine.rpc.as_deref() == Some(rpc.as_str())
            || !store.conf_state().voters.contains(&self.id)
            || !store.conf_state().voters_outgoing.is_empty()
            || self.node.raft.has_pending_conf()
            || self
                .announce_at
                .is_some_and(|t| t.elapsed() < self.cfg.election_timeout_max)
        {
            return;
        }
        let mut ctx = Peers::new();
        ctx.insert(self.id, Peer::with_rpc(mine.address.clone(), Some(&rpc)));
        let mut single = raft::eraftpb::ConfChangeSingle {
            node_id: self.id,
            ..Default::default()
        };
        single.set_change_type(raft::eraftpb::ConfChangeType::AddNode);
        let mut cc = ConfChangeV2::default();
        cc.set_changes(vec![single].into());
        cc.context = crate::storage::encode_peers(&ctx).into();
        self.announce_at = Some(Instant::now());
        match self.node.propose_conf_change(Vec::new(), cc) {
            Ok(()) => {
                self.announce_index = self.node.raft.raft_log.last_index();
                tracing::info!(member = self.id, %rpc, index = self.announce_index, "advertising this member's RPC address to the group");
            }
            Err(e) => {
                tracing::warn!(member = self.id, error = %e, "could not propose this member's RPC address; retrying");
            }
        }
    }

    /// Membership changes that arrived while this member's RPC address
    /// announcement was pending are handled once it is applied (or this
    /// member stepped down: then they fail with `NotPrimary`).
    /// Whether an operator's membership change is under way: proposed and
    /// not applied yet, waiting behind this member's RPC address
    /// announcement, or in joint consensus. The announcement alone (an
    /// empty change that only carries the address) changes nobody's
    /// membership.
    fn membership_change_pending(&self) -> bool {
        let raft = &self.node.raft;
        let only_announcement =
            self.announce_index != 0 && raft.pending_conf_index == self.announce_index;
        (raft.has_pending_conf() && !only_announcement)
            || !self.deferred_conf.is_empty()
            || !self.node.store().conf_state().voters_outgoing.is_empty()
    }

    fn run_deferred_conf(&mut self) -> Result<()> {
        if self.deferred_conf.is_empty() || (self.primary && self.node.raft.has_pending_conf()) {
            return Ok(());
        }
        for (cc, reply) in std::mem::take(&mut self.deferred_conf) {
            self.handle(Cmd::ConfChange { cc, reply })?;
        }
        Ok(())
    }

    fn not_primary(&self) -> JournalError {
        JournalError::NotPrimary {
            leader_hint: self.leader_hint(),
        }
    }

    /// Runs until shutdown or a fatal storage error.
    pub fn run(mut self) {
        // A panic is caught here, while the driver (and every waiter it
        // holds) is still alive: the failure is recorded first, so callers
        // get the panic's message rather than "shut down".
        let outcome =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_loop())) {
                Ok(r) => r,
                Err(panic) => Err(JournalError::io(
                    self.node.store().location().to_string(),
                    format!("raft driver panicked: {}", panic_text(&*panic)),
                )),
            };
        self.abandon_snapshot();
        self.discard_received_snapshots();
        if let Err(e) = &outcome {
            tracing::error!(member = self.id, error = %e, "the Raft journal stopped on a fatal error");
            *self.shared.failure.lock() = Some(e.to_string());
        }
        self.step_down_cleanup(true);
        self.publish_status();
        tracing::info!(member = self.id, "raft driver stopped");
    }

    fn run_loop(&mut self) -> Result<()> {
        let tick = self.cfg.tick_interval();
        let mut next_tick = Instant::now() + tick;
        let outcome: Result<()> = 'outer: loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(cmd) => {
                    match self.handle(cmd) {
                        Ok(true) => {}
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                    for _ in 0..8192 {
                        match self.rx.try_recv() {
                            Ok(cmd) => match self.handle(cmd) {
                                Ok(true) => {}
                                Ok(false) => break 'outer Ok(()),
                                Err(e) => break 'outer Err(e),
                            },
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break Ok(()),
            }
            let now = Instant::now();
            if now >= next_tick {
                self.node.tick();
                next_tick += tick;
                if next_tick < now {
                    next_tick = now + tick;
                }
                self.reopen_silent_links(now);
            }
            let ready = self.on_ready();
            // A received snapshot raft-rs restored was installed (and its
            // file renamed) by that ready; one left here was dropped with a
            // rebuilt node.
            self.discard_received_snapshots();
            if let Err(e) = ready {
                break Err(e);
            }
            self.maybe_announce_rpc();
            if let Err(e) = self.run_deferred_conf() {
                break Err(e);
            }
            if let Err(e) = self.maybe_snapshot() {
                break Err(e);
            }
            self.publish_status();
        };
        outcome
    }

    /// Checks a peer's message and steps it into raft-rs; see `validate`.
    ///
    /// If raft-rs panics anyway, the message is dropped and the `RawNode` is
    /// rebuilt from storage. That is safe because the driver persists every
    /// state change (entries, hard state, conf state, snapshot marker) before
    /// acting on it and raft-rs never writes storage itself: what is lost is
    /// only what a crash at this point would lose (unpersisted entries,
    /// progress of peers, leadership), which Raft recovers from.
    fn step_peer(&mut self, m: Message) -> Result<()> {
        let verdict = {
            let store = self.node.store();
            let cs = store.conf_state();
            let prs = self.node.raft.prs();
            let peers = &self.peers;
            let is_member = |id: u64| {
                cs.voters.contains(&id)
                    || cs.learners.contains(&id)
                    || cs.voters_outgoing.contains(&id)
                    || cs.learners_next.contains(&id)
                    || prs.get(id).is_some()
                    || peers.contains_key(&id)
            };
            let log = &self.node.raft.raft_log;
            let term_at = |i: u64| log_term(log, i);
            let view = LocalView {
                id: self.id,
                last_index: log.last_index(),
                committed: log.committed,
                term_at: &term_at,
                uninitialized: cs.voters.is_empty()
                    && cs.learners.is_empty()
                    && store.snapshot_meta().index == 0,
                leader: self.node.raft.state == StateRole::Leader,
                is_member: &is_member,
            };
            check(&m, &view)
        };
        if let Err(why) = verdict {
            Counters::bump(&self.shared.counters.rejected_messages);
            self.drops.dropped(self.id, m.from, &why, m.get_msg_type());
            return Ok(());
        }
        if m.get_msg_type() == MessageType::MsgAppend {
            self.catch_up.note_commit(m.commit);
        }
        let (from, msg_type) = (m.from, m.get_msg_type());
        self.links.heard(from, msg_type, Instant::now());
        let node = &mut self.node;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.step(m))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(member = self.id, error = %e, "raft refused a message");
                Ok(())
            }
            Err(panic) => {
                let what = panic_text(&*panic);
                Counters::bump(&self.shared.counters.step_panics);
                tracing::error!(
                    member = self.id,
                    from,
                    ?msg_type,
                    panic = %what,
                    "raft-rs panicked on a peer's message; message dropped, rebuilding the Raft node from storage"
                );
                self.rebuild_node()
            }
        }
    }

    /// The (index, term) of the snapshot raft-rs holds to be installed at
    /// the next `Ready`, if any.
    fn unstable_snapshot(&self) -> Option<(u64, u64)> {
        self.node
            .raft
            .raft_log
            .unstable
            .snapshot
            .as_ref()
            .map(|s| (s.get_metadata().index, s.get_metadata().term))
    }

    /// Deletes the received snapshot files no `Ready` installed.
    fn discard_received_snapshots(&mut self) {
        for (_, file) in std::mem::take(&mut self.received_snapshots) {
            remove_received(&file);
        }
    }

    /// Replaces the `RawNode` by one built from durable storage, as after a
    /// restart: a follower at the persisted term, vote, log and conf state.
    fn rebuild_node(&mut self) -> Result<()> {
        let store = self.node.store().reopen();
        let location = store.location().to_string();
        let mut cfg = self.raft_cfg.clone();
        cfg.applied = self.applied;
        let node =
            RawNode::new(&cfg, store, &crate::logging::raft_logger(self.id)).map_err(|e| {
                JournalError::corrupt(&location, format!("raft refused the stored state: {e}"))
            })?;
        self.node = node;
        // Whatever leadership and waiters the old node had are gone.
        self.on_soft_state(0, StateRole::Follower);
        self.step_down_cleanup(false);
        Ok(())
    }

    /// Returns false on shutdown.
    fn handle(&mut self, cmd: Cmd) -> Result<bool> {
        match cmd {
            Cmd::Shutdown => return Ok(false),
            Cmd::Fatal(e) => return Err(e),
            Cmd::Learn(id, address) => {
                // Dialled and kept in the address book: only a usable one.
                if !self.address_book().contains_key(&id)
                    && crate::address::accept(&address, "peer address", &id.to_string()).is_some()
                {
                    tracing::info!(member = self.id, peer = id, %address, "learned a peer's address from its messages");
                    self.learned.insert(id, address);
                    self.sync_peers();
                }
            }
            Cmd::Bootstrap(peers, founders) => {
                if let Err(e) = self.bootstrap(peers, founders) {
                    tracing::error!(member = self.id, error = %e, "bootstrap failed");
                    return Err(e);
                }
            }
            Cmd::Step(m) => {
                if !self.refuse_uninitialized(&m) {
                    self.step_peer(*m)?;
                }
            }
            Cmd::StepSnapshot(m, file) => {
                let meta = m.get_snapshot().get_metadata();
                let key = (meta.index, meta.term);
                let before = self.unstable_snapshot();
                let stepped = if self.refuse_uninitialized(&m) {
                    Ok(())
                } else {
                    self.step_peer(*m)
                };
                // Kept only when this very message made raft-rs restore:
                // a second stream of the same index and term (ignored, or
                // refused) must not swap its bytes under the first one's.
                if before != Some(key) && self.unstable_snapshot() == Some(key) {
                    if let Some(older) = self.received_snapshots.insert(key, file) {
                        remove_received(&older);
                    }
                } else {
                    remove_received(&file);
                }
                stepped?;
            }
            Cmd::Propose(entry, reply, permit) => {
                // raft-rs would forward a follower's proposal to the leader,
                // which refuses MsgPropose from peers (see `validate`); a
                // proposal racing a step-down is refused here instead.
                if !self.primary || self.node.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(self.not_primary()));
                    return Ok(true);
                }
                let id = self.next_id;
                self.next_id += 1;
                match self.node.propose(ctx_bytes(self.nonce, id), entry.to_vec()) {
                    Ok(()) => {
                        self.proposals.insert(id, (reply, permit));
                    }
                    Err(e) => {
                        tracing::debug!(member = self.id, error = %e, "proposal dropped");
                        let _ = reply.send(Err(self.not_primary()));
                    }
                }
            }
            Cmd::Read(reply) => {
                if !self.primary {
                    let _ = reply.send(Err(self.not_primary()));
                    return Ok(true);
                }
                let id = self.next_id;
                self.next_id += 1;
                self.node.read_index(ctx_bytes(self.nonce, id));
                self.reads.insert(id, reply);
            }
            Cmd::Checkpoint(reply) => {
                // Answered by `finish_snapshot` once a snapshot covers this index.
                self.snap.waiters.push((self.applied, reply));
                self.snap.not_before = None;
            }
            Cmd::SnapshotWritten { index, result } => {
                if let Some(job) = self.snap.job.take_if(|j| j.index == index) {
                    self.finish_snapshot(job, result)?;
                }
            }
            Cmd::ConfChange { cc, reply } => {
                if !self.primary {
                    let _ = reply.send(Err(self.not_primary()));
                    return Ok(true);
                }
                if self.node.raft.has_pending_conf()
                    && self.announce_index != 0
                    && self.node.raft.pending_conf_index == self.announce_index
                {
                    // Only this member's RPC address announcement is pending:
                    // the operator's change waits for it instead of failing.
                    self.deferred_conf.push((cc, reply));
                    return Ok(true);
                }
                if let Some(to) = self.node.raft.lead_transferee {
                    // raft-rs would drop the proposal ("proposal dropped").
                    let _ = reply.send(Err(JournalError::io(
                        "membership",
                        format!(
                            "leadership is being handed to member {to}; retry the membership \
                             change once it moved"
                        ),
                    )));
                    return Ok(true);
                }
                if self.node.raft.has_pending_conf()
                    || !self.node.store().conf_state().voters_outgoing.is_empty()
                {
                    let _ = reply.send(Err(JournalError::io(
                        "membership",
                        "another membership change is still in progress; retry when it completes",
                    )));
                    return Ok(true);
                }
                let id = self.next_id;
                self.next_id += 1;
                match self.node.propose_conf_change(ctx_bytes(self.nonce, id), cc) {
                    Ok(()) => {
                        self.conf_waiters.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(JournalError::io(
                            "membership",
                            format!("raft refused the change: {e}"),
                        )));
                    }
                }
            }
            Cmd::Transfer(to, reply) => {
                if self.state != StateRole::Leader {
                    let _ = reply.send(Err(self.not_primary()));
                } else if let Some(other) = self.node.raft.lead_transferee.filter(|o| *o != to) {
                    // raft-rs would abort that transfer for this one, and
                    // whoever waits for it would wait out its timeout; and
                    // to this member itself: it is about to stop leading.
                    let _ = reply.send(Err(JournalError::io(
                        "transfer_leadership",
                        format!(
                            "leadership is already being handed to member {other}; retry once \
                             it moved"
                        ),
                    )));
                } else if to == self.id {
                    let _ = reply.send(Ok(()));
                } else if !self.node.store().conf_state().voters.contains(&to) {
                    let _ = reply.send(Err(JournalError::config(
                        "transfer_leadership",
                        format!("member {to} is not a voter"),
                    )));
                } else if self.membership_change_pending() {
                    // The pending change may remove `to`: a leader it removes
                    // keeps leading (raft-rs), a primary outside the
                    // membership; or the transfer stalls until its timeout.
                    let _ = reply.send(Err(JournalError::io(
                        "membership",
                        format!(
                            "a membership change is in progress; leadership cannot move to \
                             member {to} until it completes: retry then"
                        ),
                    )));
                } else {
                    tracing::info!(member = self.id, to, "transferring leadership");
                    self.node.transfer_leader(to);
                    let _ = reply.send(Ok(()));
                }
            }
            Cmd::Unreachable(id) => self.node.report_unreachable(id),
            Cmd::SnapshotReport(id, status) => self.node.report_snapshot(id, status),
            Cmd::SnapshotDamaged {
                to,
                index,
                term,
                error,
            } => self.on_damaged_snapshot(to, index, term, error),
        }
        Ok(true)
    }

    /// A member without a membership (no conf state, no snapshot: a JOIN
    /// member before it was added, or a founder still deciding) must not
    /// count toward any quorum: it drops vote and pre-vote requests,
    /// leadership hand-overs and reads, appends that start at index 1 (those
    /// would give it a log without the membership), and, unless it was
    /// formatted JOIN, heartbeats (a voter's heartbeat answer counts toward
    /// a leader's check-quorum and ReadIndex).
    /// An append at a later index is stepped: raft-rs rejects it (the log is
    /// empty), a rejection counts toward nothing, and it is what makes the
    /// leader fall back to a snapshot, which is how an added member gets the
    /// conf state that lists its id. Logged once per uninitialized spell.
    fn refuse_uninitialized(&mut self, m: &Message) -> bool {
        let store = self.node.store();
        let cs = store.conf_state();
        let uninitialized = cs.voters.is_empty()
            && cs.learners.is_empty()
            && cs.voters_outgoing.is_empty()
            && store.snapshot_meta().index == 0;
        if !uninitialized {
            self.uninit_logged = false;
            return false;
        }
        let refuse = match m.msg_type {
            MessageType::MsgRequestVote
            | MessageType::MsgRequestPreVote
            | MessageType::MsgTimeoutNow
            | MessageType::MsgReadIndex
            | MessageType::MsgReadIndexResp => true,
            // A JOIN member's id is new: a leader knows it only as the learner
            // an operator added, and a learner's answers count toward no
            // quorum; answering resumes the leader's probe (a lost probe
            // append is otherwise never retried), which leads to the
            // snapshot. A NEW_CLUSTER member may be listed as a voter.
            MessageType::MsgHeartbeat => !self.join_member,
            MessageType::MsgAppend => m.index == 0,
            _ => false,
        };
        if refuse {
            Counters::bump(&self.shared.counters.rejected_messages);
            if !std::mem::replace(&mut self.uninit_logged, true) {
                tracing::warn!(
                    member = self.id,
                    from = m.from,
                    kind = ?m.msg_type,
                    "this member has no Raft membership yet (JOIN member not added yet, or a \
                     founder still deciding): it does not vote, answer heartbeats or take a log \
                     from index 1, and waits for a snapshot that lists its id"
                );
            }
        }
        refuse
    }

    /// Installs the initial voter set on a member that still holds no Raft
    /// state at all; does nothing if it received any meanwhile.
    fn bootstrap(
        &mut self,
        peers: Peers,
        founders: std::collections::BTreeMap<String, u64>,
    ) -> Result<()> {
        let store = self.node.store();
        // A term learned from a leader's message is not state: a member
        // without membership takes no entry, casts no vote and commits
        // nothing, so with no vote, no commit and no entry it is still as
        // empty as the handshake saw it. (Requiring the whole hard state to
        // be default left a vouched founder that heard a leader before its
        // handshake finished without membership for good.)
        let hs = store.hard_state();
        let fresh = store.conf_state() == &ConfState::default()
            && store.snapshot_meta().index == 0
            && hs.vote == 0
            && hs.commit == 0
            && self.node.raft.raft_log.last_index() == 0;
        if !fresh {
            tracing::info!(
                member = self.id,
                "not bootstrapping: this member received state meanwhile"
            );
            return Ok(());
        }
        // Durable before the membership: this member vouches for them.
        self.node.mut_store().set_founders(&founders)?;
        *self.shared.founders.lock() = founders;
        let mut cs = ConfState::default();
        // raft-rs changes one voter at a time outside joint consensus.
        for id in peers.keys() {
            let mut single = raft::eraftpb::ConfChangeSingle {
                node_id: *id,
                ..Default::default()
            };
            single.set_change_type(raft::eraftpb::ConfChangeType::AddNode);
            let mut cc = ConfChangeV2::default();
            cc.set_changes(vec![single].into());
            cs = self.node.apply_conf_change(&cc).map_err(|e| {
                JournalError::io(self.node.store().location().to_string(), e.to_string())
            })?;
        }
        self.node
            .mut_store()
            .set_conf_state(cs.clone(), peers, 0, true)?;
        tracing::info!(member = self.id, voters = ?cs.voters, "initial membership bootstrapped");
        *self.shared.conf.lock() = cs;
        self.sync_peers();
        Ok(())
    }

    /// A snapshot file failed verification before it was sent: it is
    /// reported, moved aside so it is never sent again, raft-rs hears the
    /// delivery failed, and (if it is the newest) a fresh snapshot is taken
    /// from the current state by the main loop before raft-rs is offered one.
    fn on_damaged_snapshot(&mut self, to: u64, index: u64, term: u64, error: JournalError) {
        let path = snapshot_file(self.node.store().snap_dir(), index, term);
        Counters::bump(&self.shared.counters.corrupt_snapshots);
        tracing::error!(
            member = self.id,
            to,
            file = %path.display(),
            %error,
            "a local snapshot file is damaged; not sending it, taking a fresh snapshot"
        );
        if path.exists() {
            match crate::storage::quarantine_snapshot_file(&path) {
                Ok(moved) => {
                    tracing::warn!(member = self.id, file = %moved.display(), "damaged snapshot file kept aside")
                }
                Err(e) => {
                    tracing::warn!(member = self.id, file = %path.display(), error = %e, "could not move the damaged snapshot aside")
                }
            }
        }
        let newest = self.node.store().snapshot_meta();
        if newest.index == index && newest.term == term {
            self.node.mut_store().set_snapshot_damaged();
        }
        self.node.report_snapshot(to, SnapshotStatus::Failure);
    }

    /// Hands messages to the peer senders. A snapshot that cannot be handed
    /// over (no address, file missing, sender gone) is reported to raft-rs
    /// as a failed delivery at once, so it retries instead of waiting.
    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let is_snapshot = m.msg_type == MessageType::MsgSnapshot;
            let to = m.to;
            let delivered = self.hand_over(m);
            if is_snapshot && !delivered {
                self.node.report_snapshot(to, SnapshotStatus::Failure);
            }
        }
    }

    /// False when the message could not be queued for its peer.
    fn hand_over(&self, m: Message) -> bool {
        let Some(peer) = self.peers.get(&m.to) else {
            tracing::debug!(
                member = self.id,
                to = m.to,
                "no address for peer; message dropped"
            );
            return false;
        };
        if m.msg_type != MessageType::MsgSnapshot {
            return peer.tx.send(Outbound::Msg(m)).is_ok();
        }
        let meta = m.get_snapshot().get_metadata();
        let path = snapshot_file(self.node.store().snap_dir(), meta.index, meta.term);
        match std::fs::File::open(&path) {
            Ok(f) => {
                tracing::info!(
                    member = self.id,
                    to = m.to,
                    index = meta.index,
                    "sending snapshot"
                );
                peer.tx.send(Outbound::Snapshot(m, f, path)).is_ok()
            }
            Err(e) => {
                tracing::warn!(member = self.id, path = %path.display(), error = %e, "snapshot file missing; cannot send");
                false
            }
        }
    }

    /// While leading, has the link to every member that answered nothing
    /// for the bound reopened (`link_watch`): raft-rs keeps sending into a
    /// link that delivers nothing as long as the transport holds it open.
    fn reopen_silent_links(&mut self, now: Instant) {
        // raft-rs's own role: `self.state` only follows it at the next
        // ready, and a leader deposed meanwhile must not act as one.
        if self.node.raft.state != StateRole::Leader {
            return;
        }
        let me = self.id;
        let members: Vec<u64> = self
            .node
            .raft
            .prs()
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id != me)
            .collect();
        let silent_for = self.links.bound();
        for id in self.links.silent(members, now) {
            if let Some(peer) = self.peers.get(&id) {
                let _ = peer.tx.send(Outbound::Reopen(silent_for));
            }
        }
    }

    fn on_soft_state(&mut self, leader: u64, state: StateRole) {
        let was_leader = self.state == StateRole::Leader;
        if leader != 0 && leader != self.leader {
            self.cfg.metrics.raft_leader_changed();
        }
        self.leader = leader;
        self.state = state;
        *self.shared.leader_id.lock() = leader;
        if was_leader && state != StateRole::Leader {
            self.links.follow();
            tracing::info!(
                member = self.id,
                term = self.node.raft.term,
                new_leader = leader,
                "stepped down"
            );
            self.step_down_cleanup(false);
        }
        if state == StateRole::Leader && !was_leader {
            self.links.lead();
            tracing::info!(
                member = self.id,
                term = self.node.raft.term,
                "elected leader; primary once an entry of this term is applied"
            );
        }
    }

    /// Leaves primacy: the role flips to Standby first, then every waiter fails.
    fn step_down_cleanup(&mut self, shutting_down: bool) {
        self.primary = false;
        self.role.send_if_modified(|r| {
            let changed = *r != Role::Standby;
            *r = Role::Standby;
            changed
        });
        let failure = self.shared.failure.lock().clone();
        let err = |d: &Driver| {
            if let Some(f) = &failure {
                JournalError::io(
                    d.node.store().location().to_string(),
                    format!("the journal stopped: {f}"),
                )
            } else if shutting_down {
                JournalError::Shutdown
            } else {
                d.not_primary()
            }
        };
        for (_, (tx, _permit)) in std::mem::take(&mut self.proposals) {
            let _ = tx.send(Err(err(self)));
        }
        for (_, tx) in std::mem::take(&mut self.conf_waiters) {
            let _ = tx.send(Err(err(self)));
        }
        for (_, tx) in std::mem::take(&mut self.deferred_conf) {
            let _ = tx.send(Err(err(self)));
        }
        for (_, tx) in std::mem::take(&mut self.reads) {
            let _ = tx.send(Err(err(self)));
        }
        for (_, tx) in std::mem::take(&mut self.ready_reads) {
            let _ = tx.send(Err(err(self)));
        }
    }

    fn on_ready(&mut self) -> Result<()> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let location = self.node.store().location().to_string();
        let mut rd = self.node.ready();
        if let Some(ss) = rd.ss() {
            let (leader, state) = (ss.leader_id, ss.raft_state);
            self.on_soft_state(leader, state);
        }
        if !rd.messages().is_empty() {
            let msgs = rd.take_messages();
            self.send(msgs);
        }
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            let hs = rd.hs().cloned();
            self.install_snapshot(snap, hs)?;
        }
        let committed = rd.take_committed_entries();
        self.apply_entries(committed)?;
        let sync = rd.must_sync() || !rd.entries().is_empty();
        let hs = rd.hs().cloned();
        let wrote = !rd.entries().is_empty() || hs.is_some();
        let entries = rd.entries().len();
        self.node
            .mut_store()
            .persist(rd.entries(), hs.as_ref(), sync)?;
        if entries > 0 {
            self.cfg.metrics.batch_committed(entries);
        }
        if sync && wrote {
            self.shared
                .synced_writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for rs in rd.take_read_states() {
            if let Some(id) = ctx_id(self.nonce, &rs.request_ctx) {
                if let Some(tx) = self.reads.remove(&id) {
                    self.ready_reads.push_back((rs.index, tx));
                }
            }
        }
        if !rd.persisted_messages().is_empty() {
            let msgs = rd.take_persisted_messages();
            self.send(msgs);
        }
        let mut light = self.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            let mut hs: HardState = self.node.store().hard_state().clone();
            hs.commit = commit;
            self.node.mut_store().persist(&[], Some(&hs), false)?;
        }
        let msgs = light.take_messages();
        self.send(msgs);
        let committed = light.take_committed_entries();
        self.apply_entries(committed)?;
        self.node.advance_apply();
        self.release_reads();
        let _ = location;
        if std::mem::take(&mut self.snapshot_pending) && self.state == StateRole::Leader {
            self.snap.wanted = true;
        }
        Ok(())
    }

    fn release_reads(&mut self) {
        while let Some((index, _)) = self.ready_reads.front() {
            if *index > self.applied {
                break;
            }
            if let Some((_, tx)) = self.ready_reads.pop_front() {
                let _ = tx.send(Ok(()));
            }
        }
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut replies = Vec::new();
        let r = self.apply_entries_inner(entries, &mut replies);
        // Status first, so a proposer that got its output sees it applied.
        self.shared.status.lock().last_applied = self.applied;
        self.catch_up.applied(self.id, self.applied);
        for (tx, out) in replies {
            let _ = tx.send(Ok(out));
        }
        r
    }

    fn apply_entries_inner(
        &mut self,
        entries: Vec<Entry>,
        replies: &mut Vec<(oneshot::Sender<Result<Bytes>>, Bytes)>,
    ) -> Result<()> {
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            match e.entry_type {
                EntryType::EntryNormal => {
                    if !e.data.is_empty() {
                        let out = self.machine.write().apply(e.index, &e.data);
                        if let Some(id) = ctx_id(self.nonce, &e.context) {
                            if let Some((tx, _permit)) = self.proposals.remove(&id) {
                                replies.push((tx, out));
                            }
                        }
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_entry(&e)?;
                }
            }
            self.applied = e.index;
            if !self.primary && self.state == StateRole::Leader && e.term == self.node.raft.term {
                self.primary = true;
                let term = self.node.raft.term;
                tracing::info!(
                    member = self.id,
                    term,
                    applied = e.index,
                    "serving as primary"
                );
                self.role.send_replace(Role::Primary { epoch: term });
                if self.node.store().snapshot_meta().index == 0 {
                    self.snapshot_pending = true;
                }
            }
        }
        Ok(())
    }

    fn apply_conf_entry(&mut self, e: &Entry) -> Result<()> {
        let cc: ConfChangeV2 = if e.entry_type == EntryType::EntryConfChangeV2 {
            match ConfChangeV2::parse_from_bytes(&e.data) {
                Ok(cc) => cc,
                Err(err) => {
                    return Err(JournalError::corrupt(
                        format!("raft log entry {}", e.index),
                        format!("undecodable membership change: {err}"),
                    ))
                }
            }
        } else {
            match ConfChange::parse_from_bytes(&e.data) {
                Ok(cc) => {
                    let mut single = raft::eraftpb::ConfChangeSingle {
                        node_id: cc.node_id,
                        ..Default::default()
                    };
                    single.set_change_type(cc.get_change_type());
                    let mut v2 = ConfChangeV2::default();
                    v2.set_changes(vec![single].into());
                    v2.context = cc.context;
                    v2
                }
                Err(err) => {
                    return Err(JournalError::corrupt(
                        format!("raft log entry {}", e.index),
                        format!("undecodable membership change: {err}"),
                    ))
                }
            }
        };
        let waiter = ctx_id(self.nonce, &e.context).and_then(|id| self.conf_waiters.remove(&id));
        if e.index <= self.conf_index {
            // Already reflected in the stored conf state (replay after restart).
            if let Some(tx) = waiter {
                let _ = tx.send(Ok(()));
            }
            return Ok(());
        }
        let before = self.node.store().conf_state().clone();
        let uninitialized = before.voters.is_empty()
            && before.learners.is_empty()
            && self.node.store().snapshot_meta().index == 0;
        if uninitialized {
            return Err(JournalError::io(
                self.node.store().location(),
                "this member joined from the log instead of a snapshot, so it cannot know the initial membership; \
                 wipe its data directory and add it again",
            ));
        }
        let known = |id: u64| {
            before.voters.contains(&id)
                || before.learners.contains(&id)
                || before.voters_outgoing.contains(&id)
                || before.learners_next.contains(&id)
        };
        if self.state == StateRole::Leader && cc.changes.iter().any(|c| !known(c.node_id)) {
            self.snapshot_pending = true;
        }
        match self.node.apply_conf_change(&cc) {
            Ok(cs) => {
                let mut peers = self.node.store().peers().clone();
                for (id, mut peer) in decode_peers(&cc.context) {
                    // A change naming no RPC address keeps the one known for
                    // the same member at the same peer address.
                    if peer.rpc.is_none() {
                        if let Some(old) = peers.get(&id).filter(|o| o.address == peer.address) {
                            peer.rpc = old.rpc.clone();
                        }
                    }
                    peers.insert(id, peer);
                }
                let members: std::collections::HashSet<u64> = cs
                    .voters
                    .iter()
                    .chain(cs.learners.iter())
                    .chain(cs.voters_outgoing.iter())
                    .chain(cs.learners_next.iter())
                    .copied()
                    .collect();
                peers.retain(|id, _| members.contains(id));
                tracing::info!(member = self.id, index = e.index, voters = ?cs.voters, learners = ?cs.learners, outgoing = ?cs.voters_outgoing, "membership change applied");
                self.node
                    .mut_store()
                    .set_conf_state(cs.clone(), peers, e.index, true)?;
                self.conf_index = e.index;
                *self.shared.conf.lock() = cs;
                self.sync_peers();
                if let Some(tx) = waiter {
                    let _ = tx.send(Ok(()));
                }
            }
            Err(err) => {
                tracing::warn!(member = self.id, index = e.index, error = %err, "membership change rejected by raft");
                if let Some(tx) = waiter {
                    let _ = tx.send(Err(JournalError::io("membership", err.to_string())));
                }
            }
        }
        Ok(())
    }

    fn install_snapshot(&mut self, snap: Snapshot, hs: Option<HardState>) -> Result<()> {
        let meta: SnapshotMetadata = snap.get_metadata().clone();
        let path = snapshot_file(self.node.store().snap_dir(), meta.index, meta.term);
        let loc = path.display().to_string();
        if let Some(received) = self.received_snapshots.remove(&(meta.index, meta.term)) {
            // raft-rs restores only a snapshot past the commit index (or at
            // it with another term, which `validate` refuses), so this name
            // is never the one of the snapshot this member stands on.
            std::fs::rename(&received, &path).map_err(|e| JournalError::io(&loc, e))?;
            sync_dir(self.node.store().snap_dir()).map_err(|e| JournalError::io(&loc, e))?;
        }
        tracing::info!(
            member = self.id,
            index = meta.index,
            term = meta.term,
            "installing snapshot"
        );
        // Checked when it was received; checked again here because raft-rs
        // now relies on it and the file could have changed since.
        {
            let f = std::fs::File::open(&path).map_err(|e| JournalError::io(&loc, e))?;
            let (header, _) =
                journal_core::snapshot::read_snapshot_header(&mut BufReader::new(f), &loc)?;
            crate::storage::check_snapshot_header(
                &header,
                &self.cfg.effective_cluster_id(),
                meta.index,
                meta.term,
                &loc,
            )?;
        }
        let f = std::fs::File::open(&path).map_err(|e| JournalError::io(&loc, e))?;
        {
            let size = f.metadata().map(|m| m.len()).ok();
            let mut reader = ProgressReader::new(
                BufReader::with_capacity(1 << 20, f),
                Progress::new(format!("installing snapshot {loc}"), Unit::Bytes, size),
            );
            let mut machine = self.machine.write();
            let restored = restore_snapshot(&mut *machine, &mut reader, &loc);
            reader.progress().finish();
            restored?;
        }
        let mut hs = hs.unwrap_or_else(|| self.node.store().hard_state().clone());
        hs.commit = hs.commit.max(meta.index);
        let peers = decode_peers(&snap.data);
        let cs = meta.get_conf_state().clone();
        self.node
            .mut_store()
            .install_snapshot(meta.clone(), peers, &hs)?;
        self.applied = meta.index;
        self.conf_index = meta.index;
        *self.shared.conf.lock() = cs;
        self.shared
            .snapshots_installed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.cfg
            .metrics
            .raft_snapshot_transferred(journal_core::metrics::Direction::received);
        self.sync_peers();
        Ok(())
    }

    /// Starts a snapshot when one is due (period reached, wanted by raft-rs
    /// or a joining member, a damaged one to replace, a `checkpoint()` call)
    /// and none is being written.
    fn maybe_snapshot(&mut self) -> Result<()> {
        if self.node.store().take_snapshot_wanted() {
            // raft-rs asked: a peer needs a snapshot newer than, or listing
            // more members than, the newest one.
            self.snap.wanted = true;
        }
        if self.snap.job.is_some() {
            return Ok(());
        }
        if let Some(t) = self.snap.not_before {
            if Instant::now() < t {
                return Ok(());
            }
            self.snap.not_before = None;
        }
        let newest = self.node.store().snapshot_meta().index;
        let period_due = self.applied >= newest + self.cfg.checkpoint_period_entries;
        if period_due || self.snap.wanted || !self.snap.waiters.is_empty() {
            let compact_all = std::mem::take(&mut self.snap.wanted);
            self.start_snapshot(compact_all)?;
        }
        Ok(())
    }

    /// Captures the applied state and writes it to a snapshot file.
    ///
    /// With [`journal_core::StateMachine::freeze`] the capture is the only
    /// work done here (under the read lock, between applies); the file is
    /// written (temp, fsync, rename, dir fsync) on a background thread while
    /// this thread keeps ticking, committing and applying, and
    /// `finish_snapshot` marks it when the writer reports back. Without
    /// `freeze` the state is written here under the read lock: nothing is
    /// applied, and no message handled, until it is written.
    fn start_snapshot(&mut self, compact_all: bool) -> Result<()> {
        let index = self.applied;
        let current = self.node.store().snapshot_meta().clone();
        // A damaged newest snapshot is replaced even when nothing was applied since.
        if index < current.index
            || index == 0
            || (index == current.index && !self.node.store().snapshot_damaged())
        {
            self.answer_waiters(current.index);
            return Ok(());
        }
        let location = self.node.store().location().to_string();
        let term = self
            .node
            .store()
            .term(index)
            .map_err(|e| raft_err(&location, e))?;
        let dir = self.node.store().snap_dir().to_path_buf();
        let path = snapshot_file(&dir, index, term);
        let cancel = Arc::new(AtomicBool::new(false));
        let mut job = SnapshotJob {
            index,
            term,
            conf_state: self.node.store().conf_state().clone(),
            compact_all,
            cancel: cancel.clone(),
            thread: None,
            started: Instant::now(),
        };
        Counters::bump(&self.shared.counters.snapshot_writes_started);
        let frozen = self.machine.read().freeze();
        let meta = SnapshotMeta {
            cluster_id: self.cfg.effective_cluster_id(),
            next_seq: index + 1,
            epoch: term,
        };
        match frozen {
            Some(frozen) => {
                let tx = self.tx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("raft-{}-snapshot", self.id))
                    .spawn(move || {
                        let result = write_snapshot_file_with(
                            &mut |w: &mut dyn Write| {
                                write_frozen_snapshot(&*frozen, &meta, w, DEFAULT_SNAPSHOT_FRAME)
                            },
                            &path,
                            &dir,
                            &cancel,
                        );
                        let _ = tx.send(Cmd::SnapshotWritten { index, result });
                    });
                match spawned {
                    Ok(handle) => {
                        job.thread = Some(handle);
                        self.snap.job = Some(job);
                        Ok(())
                    }
                    Err(e) => self
                        .finish_snapshot(job, Err(JournalError::io("snapshot writer thread", e))),
                }
            }
            None => {
                let result = write_snapshot_file(&self.machine, &meta, &path, &dir);
                self.finish_snapshot(job, result)
            }
        }
    }

    /// Records a written snapshot and compacts the log below it; a failed
    /// one is logged and tried again later.
    ///
    /// The log is compacted up to the snapshot, except that a leader keeps
    /// the entries its slowest follower still lacks (at most
    /// `checkpoint_period_entries / 2` of them), so a follower a little
    /// behind catches up by appends rather than a full snapshot; one further
    /// behind than that, or a joining member (`compact_all`), gets the snapshot.
    fn finish_snapshot(&mut self, mut job: SnapshotJob, result: Result<u64>) -> Result<()> {
        if let Some(t) = job.thread.take() {
            let _ = t.join();
        }
        Counters::bump(&self.shared.counters.snapshot_writes_finished);
        let (index, term) = (job.index, job.term);
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(member = self.id, index, error = %e, "writing a snapshot failed; retrying in 1s");
                self.snap.not_before = Some(Instant::now() + std::time::Duration::from_secs(1));
                self.snap.wanted |= job.compact_all;
                let location = self.node.store().location().to_string();
                for (_, tx) in std::mem::take(&mut self.snap.waiters) {
                    let _ = tx.send(Err(JournalError::io(&location, e.to_string())));
                }
                return Ok(());
            }
        };
        let current = self.node.store().snapshot_meta().clone();
        if index < current.index
            || (index == current.index && !self.node.store().snapshot_damaged())
        {
            // A snapshot from the leader was installed meanwhile; this one is older.
            if (index, term) != (current.index, current.term) {
                let _ =
                    std::fs::remove_file(snapshot_file(self.node.store().snap_dir(), index, term));
            }
            self.answer_waiters(current.index);
            return Ok(());
        }
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        meta.set_conf_state(job.conf_state);
        let mut compact_to = index + 1;
        if !job.compact_all && self.state == StateRole::Leader {
            let slowest = self
                .node
                .raft
                .prs()
                .iter()
                .filter(|(id, _)| **id != self.id)
                .map(|(_, p)| p.matched + 1)
                .min()
                .unwrap_or(compact_to);
            let floor = compact_to
                .saturating_sub(self.cfg.checkpoint_period_entries / 2)
                .max(1);
            compact_to = slowest.clamp(floor, compact_to);
        }
        self.node.mut_store().mark_snapshot(meta, compact_to)?;
        self.cfg.metrics.checkpoint_written(job.started.elapsed());
        tracing::info!(member = self.id, index, term, bytes, elapsed = ?job.started.elapsed(), "snapshot written, log compacted");
        self.answer_waiters(index);
        Ok(())
    }

    /// Answers the `checkpoint()` callers a snapshot at `covered` satisfies.
    fn answer_waiters(&mut self, covered: u64) {
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.snap.waiters)
            .into_iter()
            .partition(|(need, _)| *need <= covered);
        self.snap.waiters = rest;
        for (_, tx) in done {
            let _ = tx.send(Ok(covered + 1));
        }
    }

    /// At shutdown: stops a snapshot still being written and waits for its
    /// thread, which removes its temporary file; a file is only ever
    /// published (renamed) complete and fsynced, and is unused until marked.
    fn abandon_snapshot(&mut self) {
        if let Some(mut job) = self.snap.job.take() {
            job.cancel.store(true, Ordering::SeqCst);
            if let Some(t) = job.thread.take() {
                let _ = t.join();
            }
            Counters::bump(&self.shared.counters.snapshot_writes_finished);
            tracing::info!(
                member = self.id,
                index = job.index,
                "snapshot writing abandoned at shutdown"
            );
        }
        for (_, tx) in std::mem::take(&mut self.snap.waiters) {
            let _ = tx.send(Err(JournalError::Shutdown));
        }
    }

    fn publish_status(&self) {
        let raft = &self.node.raft;
        let store = self.node.store();
        let book = self.address_book();
        let cs = store.conf_state();
        let mut members = Vec::new();
        let mut progress = HashMap::new();
        let mut ids: Vec<u64> = cs
            .voters
            .iter()
            .chain(cs.voters_outgoing.iter())
            .chain(cs.learners.iter())
            .chain(cs.learners_next.iter())
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let learner = cs.learners.contains(&id) || cs.learners_next.contains(&id);
            let role = if id == self.leader {
                "LEADER"
            } else if learner {
                "LEARNER"
            } else {
                "FOLLOWER"
            };
            let applied = if id == self.id {
                Some(self.applied)
            } else if self.state == StateRole::Leader {
                raft.prs().get(id).map(|p| p.matched)
            } else {
                None
            };
            if let Some(m) = applied {
                progress.insert(id, m);
            }
            members.push(MemberStatus {
                id: id.to_string(),
                address: book.get(&id).map(|p| p.address.clone()).unwrap_or_default(),
                rpc_address: book.get(&id).and_then(|p| p.rpc.clone()),
                role: role.to_string(),
                applied,
            });
        }
        let snap = store.snapshot_meta().index;
        let status = JournalStatus {
            backend: "EMBEDDED",
            role: *self.role.borrow(),
            epoch: raft.term,
            last_applied: self.applied,
            last_durable: raft.raft_log.persisted,
            last_checkpoint: (snap > 0).then_some(snap + 1),
            leader_address: self.leader_hint(),
            members,
            location: store.location().to_string(),
        };
        *self.shared.status.lock() = status;
        *self.shared.progress.lock() = progress;
        *self.shared.book.lock() = book;
    }
}

/// The text of a caught panic.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Writes the state machine into `path` under its read lock (the fallback
/// for machines without `freeze`).
pub(crate) fn write_snapshot_file(
    machine: &SharedStateMachine,
    meta: &SnapshotMeta,
    path: &Path,
    dir: &Path,
) -> Result<u64> {
    let never = AtomicBool::new(false);
    write_snapshot_file_with(
        &mut |w: &mut dyn Write| {
            let guard = machine.read();
            write_snapshot(&*guard, meta, w, DEFAULT_SNAPSHOT_FRAME)
        },
        path,
        dir,
        &never,
    )
}

/// A writer that fails once `cancel` is set, so an abandoned snapshot stops
/// at its next write.
struct Cancellable<'a, W> {
    inner: W,
    cancel: &'a AtomicBool,
}

impl<W: Write> Write for Cancellable<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            // Not `Interrupted`: `write_all` would retry that forever.
            return Err(std::io::Error::other("snapshot abandoned at shutdown"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot stream into `path`: temporary file, fsync, rename,
/// directory fsync. On any error (or cancellation) the temporary file is
/// removed and nothing is published.
pub(crate) fn write_snapshot_file_with(
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<SnapshotStats>,
    path: &Path,
    dir: &Path,
    cancel: &AtomicBool,
) -> Result<u64> {
    let tmp = path.with_extension("tmp");
    let loc = tmp.display().to_string();
    let outcome = (|| -> Result<u64> {
        let file = std::fs::File::create(&tmp).map_err(|e| JournalError::io(&loc, e))?;
        let mut w = Cancellable {
            inner: BufWriter::with_capacity(1 << 20, file),
            cancel,
        };
        let mut counted = ProgressWriter::new(
            &mut w,
            Progress::new(
                format!("writing snapshot {}", path.display()),
                Unit::Bytes,
                None,
            ),
        );
        journal_core::failpoint!("raft-snapshot-write-before", |e| Err(JournalError::io(
            &loc, e
        )));
        let stats = write(&mut counted).map_err(|e| JournalError::io(&loc, e))?;
        counted.progress().finish();
        w.flush().map_err(|e| JournalError::io(&loc, e))?;
        let file = w
            .inner
            .into_inner()
            .map_err(|e| JournalError::io(&loc, e.into_error()))?;
        file.sync_all().map_err(|e| JournalError::io(&loc, e))?;
        if cancel.load(Ordering::SeqCst) {
            return Err(JournalError::Shutdown);
        }
        Ok(stats.bytes)
    })();
    let bytes = match outcome {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(|e| JournalError::io(path.display().to_string(), e))?;
    sync_dir(dir).map_err(|e| JournalError::io(dir.display().to_string(), e))?;
    // Published and fsynced; its marker is not written yet.
    journal_core::failpoint!("raft-snapshot-write-after", |e| {
        Err(JournalError::io(path.display().to_string(), e))
    });
    Ok(bytes)
}
