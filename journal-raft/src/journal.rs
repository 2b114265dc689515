//! [`RaftJournal`]: journal-core's `JournalSystem` on raft-rs.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use journal_core::progress::{Progress, ProgressReader, Unit};
use journal_core::snapshot::restore_snapshot;
use journal_core::{JournalError, JournalStatus, JournalSystem, Result, Role, SharedStateMachine};
use parking_lot::Mutex;
use raft::eraftpb::{ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState};
use raft::{RawNode, StateRole};
use tokio::sync::{oneshot, watch};

use crate::bootstrap::{round, spawn_handshake, Identity, PeerGuard, Round};
use crate::config::{member_id_for, RaftJournalConfig};
use crate::format::{
    check_marker, check_marker_identity, foreign_cluster, holds_journal_data, lost_marker,
    marker_mode, read_marker, DirLock, FormatMode,
};
use crate::format_proto::RaftFormat;
use crate::logging::raft_logger;
use crate::node::{Cmd, Counters, Driver, Shared};
use crate::proto::raft_peer_server::RaftPeerServer;
use crate::storage::{encode_peers, Peer, Peers, RaftStorage};
use crate::transport::PeerService;

/// How long adding a member waits for it to listen on its peer port (it
/// may have been started a moment before).
const JOIN_LISTEN_WAIT: Duration = Duration::from_secs(5);

/// The embedded journal: one member of a Raft group.
///
/// Guarantees (journal-core's contract, Raft flavour):
/// - `propose` returns `Ok(output)` only after the entry was committed by a
///   quorum, each of whose members fsynced it to raft-engine, and after it was
///   applied to this member's state machine.
/// - The role is `Primary { epoch: term }` only while this member is the Raft
///   leader and has applied an entry of its own term (so everything committed
///   before its election); it flips to `Standby` as soon as raft-rs steps it
///   down (a higher term seen, or check_quorum losing the majority), before
///   pending proposals fail with `NotPrimary` and before any entry of another
///   leader is applied here.
/// - Every member applies the same entries in log order; sequence numbers are
///   Raft indexes (gaps where the log holds Raft's own entries).
pub struct RaftJournal {
    id: u64,
    config: RaftJournalConfig,
    cmds: Sender<Cmd>,
    role: watch::Receiver<Role>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    driver: Mutex<Option<std::thread::JoinHandle<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    guard: Arc<PeerGuard>,
    /// The data directory's lock, held until the driver and the peer server
    /// stopped (the storage holds another handle).
    lock: Mutex<Option<Arc<DirLock>>>,
    /// The bound on proposals waiting for a quorum.
    pending: journal_core::PendingGate,
}

impl std::fmt::Debug for RaftJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftJournal")
            .field("id", &self.id)
            .field("address", &self.config.address)
            .finish()
    }
}

/// Event counts of one member since it was opened; each only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftCounters {
    /// Peer messages dropped before raft-rs saw them: impossible contents,
    /// unknown sender, wrong recipient, local message types, unparsable bytes.
    pub rejected_messages: u64,
    /// Panics raft-rs raised while stepping a peer message that this member
    /// survived (message dropped, Raft node rebuilt from storage).
    pub step_panics: u64,
    /// Snapshot streams this member started sending to peers.
    pub snapshots_sent: u64,
    /// Local snapshot files found damaged (and replaced) before sending.
    pub corrupt_snapshots: u64,
    /// Snapshot files whose writing started.
    pub snapshot_writes_started: u64,
    /// Snapshot files whose writing ended (written, failed or abandoned);
    /// while it is below `snapshot_writes_started`, one is being written.
    pub snapshot_writes_finished: u64,
}

impl RaftJournal {
    /// The bound on proposals waiting for a quorum: its limits, and how
    /// many wait now.
    pub fn pending(&self) -> &journal_core::PendingGate {
        &self.pending
    }

    /// Opens this member from `config.data_dir`, restores `machine` from the
    /// newest snapshot (verified frame by frame), starts the peer server on
    /// `config.address` and the Raft driver, and returns without waiting for
    /// an election. Must be called inside a multi-threaded tokio runtime.
    ///
    /// The data directory is locked for the journal's life before anything
    /// in it is read, and must carry this member's format marker
    /// ([`RaftJournal::format`]). A member with no Raft state bootstraps the
    /// initial membership only after the handshake of `bootstrap.rs`; until
    /// then it does not vote.
    ///
    /// Errors: `Config` for bad settings (or a folder formatted for another
    /// member or another initial membership), `Unformatted` without a
    /// marker, `ForeignJournal` for another cluster's marker, `Corrupt`
    /// naming the file for a damaged marker, log or snapshot, `Io` for
    /// storage, a directory another master holds, or a port that is taken.
    pub async fn open(
        config: RaftJournalConfig,
        machine: SharedStateMachine,
    ) -> Result<Arc<RaftJournal>> {
        config.validate()?;
        let in_list = config
            .initial_members()
            .iter()
            .any(|a| a == config.address.trim());
        let data_dir = config.data_dir.clone();
        let machine2 = machine.clone();
        let cfg2 = config.clone();
        let (storage, applied, marker) =
            tokio::task::spawn_blocking(move || -> Result<(RaftStorage, u64, RaftFormat)> {
                let lock = DirLock::acquire(&data_dir)?;
                let marker = match read_marker(&data_dir)? {
                    Some(m) => m,
                    None if holds_journal_data(&data_dir) => return Err(lost_marker(&data_dir)),
                    None => {
                        return Err(JournalError::Unformatted {
                            location: data_dir.display().to_string(),
                        })
                    }
                };
                check_marker_identity(&cfg2, &marker)?;
                if !crate::storage::log_dir(&data_dir).exists() {
                    // Never opened: no state for sure; check before creating anything.
                    check_marker(&cfg2, &marker)?;
                }
                let mut storage = RaftStorage::open_locked(lock, &data_dir, None)?;
                storage.set_log_cache_bytes(cfg2.log_cache_bytes);
                let mode = marker_mode(&marker, &data_dir)?;
                if !storage.has_state() {
                    // It may bootstrap from the list: it must be the one it was formatted with.
                    check_marker(&cfg2, &marker)?;
                    if mode == FormatMode::NewCluster && in_list && cfg2.addresses.len() == 1 {
                        // A group of one has nobody to ask; its only member bootstraps alone.
                        let peers: Peers = [(
                            marker.member_id,
                            Peer::with_rpc(cfg2.address.trim(), cfg2.rpc_address.as_deref()),
                        )]
                        .into();
                        let cs = ConfState {
                            voters: vec![marker.member_id],
                            ..Default::default()
                        };
                        storage.set_conf_state(cs, peers, 0, true)?;
                    }
                } else if marker.cluster_id != cfg2.effective_cluster_id() {
                    // A member with state uses its list only to reach peers; a
                    // grown group's updated list derives another id. Accept it
                    // when it names a current member of this group.
                    let known = storage
                        .peers()
                        .values()
                        .any(|p| cfg2.initial_members().iter().any(|c| c == p.address.trim()));
                    if cfg2.cluster_id.is_some() || !known {
                        return Err(foreign_cluster(&cfg2, &marker));
                    }
                }
                let mut applied = 0;
                if let Some(path) = storage.snapshot_path() {
                    let loc = path.display().to_string();
                    let f = std::fs::File::open(&path).map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => {
                            JournalError::corrupt(&loc, "the newest snapshot file is missing")
                        }
                        _ => JournalError::io(&loc, e),
                    })?;
                    let size = f.metadata().map(|m| m.len()).ok();
                    let mut reader = ProgressReader::new(
                        std::io::BufReader::with_capacity(1 << 20, f),
                        Progress::new(format!("restoring snapshot {loc}"), Unit::Bytes, size),
                    );
                    let mut guard = machine2.write();
                    let restored = restore_snapshot(&mut *guard, &mut reader, &loc);
                    reader.progress().finish();
                    let meta = restored?;
                    let expected = storage.snapshot_meta().index + 1;
                    if meta.next_seq != expected {
                        return Err(JournalError::corrupt(
                            &loc,
                            format!(
                                "snapshot says it covers up to {} but the log marker says {}",
                                meta.next_seq, expected
                            ),
                        ));
                    }
                    applied = storage.snapshot_meta().index;
                }
                Ok((storage, applied, marker))
            })
            .await
            .map_err(|e| JournalError::io("open", e.to_string()))??;
        // From here on the marker is the truth: this member's id and cluster id.
        let mode = FormatMode::from_code(marker.mode).unwrap_or_default();
        let mut config = config;
        config.cluster_id = Some(marker.cluster_id.clone());
        config.id = Some(marker.member_id);
        let id = marker.member_id;
        let dir_lock = storage.lock_handle();
        let founders = storage.founders();

        let location = storage.location().to_string();
        let hs = storage.hard_state().clone();
        let last = raft::Storage::last_index(&storage).unwrap_or(0);
        if hs.commit > last {
            return Err(JournalError::corrupt(
                &location,
                format!("the hard state says entries up to {} are committed but the log ends at {last}: acknowledged entries are missing", hs.commit),
            ));
        }
        let conf_index = storage.conf_index();
        let initial_conf: ConfState = storage.conf_state().clone();
        // Only a NEW_CLUSTER initial member without state may bootstrap; a
        // JOIN member never does (it waits to be added, as a new id).
        let needs_handshake = mode == FormatMode::NewCluster
            && in_list
            && config.addresses.len() > 1
            && !storage.has_state();
        let (election, max_election, heartbeat) = config.ticks();
        let raft_cfg = raft::Config {
            id,
            election_tick: election,
            min_election_tick: election,
            max_election_tick: max_election,
            heartbeat_tick: heartbeat,
            applied,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            max_committed_size_per_ready: 16 << 20,
            ..Default::default()
        };
        raft_cfg.validate().map_err(|e| {
            JournalError::config(
                "alluxio.master.embedded.journal.election.timeout.min",
                e.to_string(),
            )
        })?;
        let logger = raft_logger(id);
        let single = initial_conf.voters == vec![id] && initial_conf.learners.is_empty();
        let node = RawNode::new(&raft_cfg, storage, &logger).map_err(|e| {
            JournalError::corrupt(&location, format!("raft refused the stored state: {e}"))
        })?;

        let bind = config
            .bind_address
            .clone()
            .unwrap_or_else(|| config.address.clone());
        let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|e| {
            JournalError::io(
                format!("peer address {bind} ({})", crate::config::KEY_PORT),
                e,
            )
        })?;
        let (role_tx, role_rx) = watch::channel(Role::Standby);
        let role_tx = Arc::new(role_tx);
        let counters: Arc<Counters> = Default::default();
        let shared = Arc::new(Shared {
            status: Mutex::new(JournalStatus {
                backend: "EMBEDDED",
                role: Role::Standby,
                epoch: hs.term,
                last_applied: applied,
                last_durable: last,
                last_checkpoint: None,
                leader_address: None,
                members: Vec::new(),
                location: location.clone(),
            }),
            progress: Mutex::new(HashMap::new()),
            conf: Mutex::new(initial_conf),
            leader_id: Mutex::new(0),
            failure: Mutex::new(None),
            snapshots_installed: Default::default(),
            synced_writes: Default::default(),
            counters: counters.clone(),
            founders: Mutex::new(founders),
            book: Mutex::new(Peers::new()),
        });
        let guard = Arc::new(PeerGuard::new(
            Identity::of(&config),
            id,
            marker.incarnation,
            shared.clone(),
        ));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (cmds, rx) = std::sync::mpsc::channel();
        let service = PeerService {
            my_id: id,
            cluster_id: config.effective_cluster_id(),
            max_snapshot_bytes: config.max_snapshot_bytes,
            counters: counters.clone(),
            cmds: cmds.clone(),
            snap_dir: crate::storage::snapshot_dir(&config.data_dir),
            shutdown: shutdown_rx.clone(),
            guard: guard.clone(),
        };
        let mut server_shutdown = shutdown_rx.clone();
        let max = config.max_message_bytes;
        let inbound_auth = crate::auth::ServerAuth::new(
            config
                .require_auth
                .then(|| config.secret.as_deref().cloned())
                .flatten(),
            crate::auth::Realm::Peer,
        );
        if inbound_auth.is_required() {
            tracing::info!(member = id, "the peer port requires authentication");
        }
        let server = tokio::spawn(async move {
            let svc = RaftPeerServer::new(service)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);
            // Checked before any handler: a refused peer reaches neither the
            // cluster-id guard nor the driver, so it changes nothing.
            let svc = tonic::service::interceptor::InterceptedService::new(svc, inbound_auth);
            // The builder's tcp_nodelay does not reach sockets handed to it
            // as a stream: without it a leader streaming large entries
            // waited a delayed ACK (about 40 ms) for each window update.
            let incoming = journal_core::net::nodelay_incoming(listener);
            let r = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = server_shutdown.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(member = id, error = %e, "peer server failed");
            }
        });

        let mut driver = Driver {
            node,
            id,
            cfg: config.clone(),
            machine,
            rx,
            tx: cmds.clone(),
            rt: tokio::runtime::Handle::current(),
            shutdown: shutdown_rx,
            role: role_tx.clone(),
            shared: shared.clone(),
            applied,
            conf_index,
            peers: HashMap::new(),
            nonce: rand::random(),
            next_id: 1,
            proposals: HashMap::new(),
            conf_waiters: HashMap::new(),
            reads: HashMap::new(),
            ready_reads: Default::default(),
            primary: false,
            leader: 0,
            state: StateRole::Follower,
            snapshot_pending: false,
            uninit_logged: false,
            learned: HashMap::new(),
            announce_at: None,
            announce_index: 0,
            deferred_conf: Vec::new(),
            join_member: mode == FormatMode::Join,
            raft_cfg,
            drops: crate::validate::DropLog::new(),
            snap: Default::default(),
            catch_up: Default::default(),
            received_snapshots: HashMap::new(),
            links: crate::link_watch::LinkWatch::new(crate::link_watch::silence_for(
                config.election_timeout_max,
            )),
        };
        // The log replayed at open is a catch-up too (reported if long).
        driver.catch_up.note_commit(hs.commit);
        driver.sync_peers();
        let handshake_shutdown = driver.shutdown.clone();
        if single {
            // A group of one elects itself without waiting for a timeout.
            if let Err(e) = driver.node.campaign() {
                tracing::warn!(member = id, error = %e, "campaign failed");
            }
        }
        let thread = std::thread::Builder::new()
            .name(format!("raft-{id}"))
            .spawn({
                let shared = shared.clone();
                move || {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || driver.run()));
                    if let Err(panic) = outcome {
                        let what = crate::node::panic_text(&*panic);
                        tracing::error!(member = id, panic = %what, "the Raft driver panicked; this member stopped");
                        *shared.failure.lock() = Some(format!("raft driver panicked: {what}"));
                        role_tx.send_replace(Role::Standby);
                        shared.status.lock().role = Role::Standby;
                    }
                }
            })
            .map_err(|e| JournalError::io("raft driver thread", e))?;
        tracing::info!(member = id, address = %config.address, applied, ?mode, "raft journal open");
        let pending = journal_core::PendingGate::with_metrics(config.pending, &config.metrics);
        let journal = Arc::new(RaftJournal {
            pending,
            id,
            config,
            cmds,
            role: role_rx,
            shared,
            shutdown,
            driver: Mutex::new(Some(thread)),
            server: Mutex::new(Some(server)),
            guard,
            lock: Mutex::new(Some(dir_lock)),
        });
        if needs_handshake {
            // One round now, so a wiped member whose group is up fails here
            // with the reason; then keep asking in the background (founders
            // open one after another, so the others may not be up yet).
            let cfg = &journal.config;
            let timeout = cfg
                .election_timeout_min
                .clamp(Duration::from_millis(200), Duration::from_secs(1));
            match round(cfg, &journal.guard, timeout).await {
                Round::Bootstrap { founders, rpc } => {
                    let peers = crate::bootstrap::initial_peers(cfg, &rpc);
                    tracing::info!(member = id, empty = ?founders, "bootstrapping the initial membership");
                    let _ = journal.cmds.send(Cmd::Bootstrap(peers, founders));
                }
                Round::Refuse(e) => {
                    tracing::error!(member = id, error = %e, "refusing to open");
                    journal.shutdown().await;
                    return Err(e);
                }
                Round::Wait { .. } => spawn_handshake(
                    &tokio::runtime::Handle::current(),
                    journal.config.clone(),
                    journal.guard.clone(),
                    journal.cmds.clone(),
                    handshake_shutdown,
                ),
            }
        }
        Ok(journal)
    }

    /// Formats `cfg.data_dir` for this member: writes the `FORMAT` marker
    /// (magic, layout version, cluster id, member id and address, sorted
    /// initial members, creation time) atomically under the directory lock.
    /// `primacy format` calls this once per member before its first start.
    ///
    /// Errors: `Config` for bad settings, `AlreadyFormatted` if a marker
    /// exists, `Corrupt` if a damaged one does (left untouched),
    /// `ForeignJournal` if the directory holds other data, `Io` for a
    /// directory another master holds or a failed write. Never changes an
    /// existing file.
    ///
    /// `mode` ([`FormatMode`]): `NewCluster` for the initial members of a
    /// brand-new group (the address must be in
    /// `alluxio.master.embedded.journal.addresses`); `Join` for a member added
    /// to a running group or one **replacing lost data**: it gets a fresh Raft
    /// id and waits until an operator adds it (`add_member`; for a
    /// replacement, first `remove_member` of the old id). Never re-format a
    /// lost member with `NewCluster`: it would be refused at open when its
    /// group is reachable, and in a group whose configured list has only its
    /// own address it would bootstrap a new group alone. After growing a
    /// group, update `alluxio.master.embedded.journal.addresses` on every
    /// member to the current members, so a wiped member can find them.
    ///
    /// Errors: `Config` for bad settings (NEW_CLUSTER for an address not in
    /// the list, JOIN with an explicit member id), `AlreadyFormatted` if a
    /// marker exists, `Corrupt` if a damaged one does (left untouched) or if
    /// the directory holds a journal log without a marker (lost marker: see
    /// [`RaftJournal::repair_marker`]), `ForeignJournal` if it holds other
    /// data, `Io` for a directory another master holds or a failed write.
    /// Never changes an existing file.
    pub fn format(cfg: &RaftJournalConfig, mode: FormatMode) -> Result<()> {
        crate::format::write_marker(cfg, mode)
    }

    /// Recreates the `FORMAT` marker of a directory that holds this member's
    /// Raft log but lost its marker. The member id is taken from the log's
    /// replicated membership (the entry whose address is `cfg.address`), the
    /// cluster id from the newest snapshot (else the configured one), the
    /// mode from the id (the address's own id: NEW_CLUSTER, else JOIN).
    ///
    /// Errors: `AlreadyFormatted` when a marker exists, `Unformatted` when
    /// there is no log to repair from, `Config` when the log's membership
    /// has no member at this address, `Corrupt`/`Io` as `open`.
    pub fn repair_marker(cfg: &RaftJournalConfig) -> Result<()> {
        cfg.validate()?;
        let dir = &cfg.data_dir;
        let lock = DirLock::acquire(dir)?;
        if let Some(existing) = read_marker(dir)? {
            return Err(JournalError::AlreadyFormatted {
                location: dir.display().to_string(),
                cluster_id: existing.cluster_id,
            });
        }
        if !holds_journal_data(dir) {
            return Err(JournalError::Unformatted {
                location: dir.display().to_string(),
            });
        }
        let storage = RaftStorage::open_locked(lock, dir, None)?;
        let id = storage
            .peers()
            .iter()
            .find(|(_, p)| p.address.trim() == cfg.address.trim())
            .map(|(id, _)| *id)
            .ok_or_else(|| {
                JournalError::config(
                    crate::config::KEY_HOSTNAME,
                    format!(
                        "the log in {} lists no member at {} (members: {:?}); cannot tell \
                         which member this directory belongs to",
                        dir.display(),
                        cfg.address,
                        storage.peers()
                    ),
                )
            })?;
        let cluster_id = match storage.snapshot_path() {
            Some(path) => crate::storage::verify_snapshot_file(&path)?.cluster_id,
            None => cfg.effective_cluster_id(),
        };
        let mode = if id == member_id_for(&cfg.address) {
            FormatMode::NewCluster
        } else {
            FormatMode::Join
        };
        let marker = RaftFormat {
            magic: crate::format::FORMAT_MAGIC.to_string(),
            layout_version: crate::format::LAYOUT_VERSION,
            cluster_id,
            member_id: id,
            address: cfg.address.trim().to_string(),
            initial_members: cfg.initial_members(),
            membership: cfg.membership_fingerprint(),
            created_unix_ms: journal_core::snapshot::unix_ms(),
            mode: mode.code(),
            incarnation: rand::random::<u64>() | 1,
        };
        crate::format::write_marker_file(dir, &marker)?;
        tracing::warn!(dir = %dir.display(), member = id, ?mode, cluster = %marker.cluster_id, "format marker recreated from the log");
        drop(storage);
        Ok(())
    }

    /// True when `cfg.data_dir` holds a format marker that belongs to this
    /// member; false when it holds none. Reads only (no lock is taken).
    ///
    /// Errors as `open` reports them: `Corrupt` for a damaged marker,
    /// `ForeignJournal` for another cluster's, `Config` for another
    /// member's or another initial membership.
    ///
    /// A directory that was opened before (it has a log directory) may hold
    /// state, for which the configured list is only a contact list: only the
    /// identity checks apply then. Without a log, the list must be the one
    /// it was formatted with, as `open` requires.
    pub fn is_formatted(cfg: &RaftJournalConfig) -> Result<bool> {
        cfg.validate()?;
        match read_marker(&cfg.data_dir)? {
            Some(marker) if crate::storage::log_dir(&cfg.data_dir).exists() => {
                check_marker_identity(cfg, &marker).map(|_| true)
            }
            Some(marker) => check_marker(cfg, &marker).map(|_| true),
            None if holds_journal_data(&cfg.data_dir) => Err(lost_marker(&cfg.data_dir)),
            None => Ok(false),
        }
    }

    /// This member's format mode and incarnation.
    pub fn format_mode(&self) -> FormatMode {
        FormatMode::from_code(
            read_marker(&self.config.data_dir)
                .ok()
                .flatten()
                .map(|m| m.mode)
                .unwrap_or(0),
        )
        .unwrap_or_default()
    }

    /// How many peer calls this member refused because the sender belongs
    /// to another group (cluster id or initial membership differ).
    pub fn foreign_peers_refused(&self) -> u64 {
        self.guard
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This member's Raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// This member's configuration.
    pub fn config(&self) -> &RaftJournalConfig {
        &self.config
    }

    /// The Raft id of the current leader as this member knows it (0: none).
    pub fn leader_id(&self) -> u64 {
        *self.shared.leader_id.lock()
    }

    /// How many snapshots this member received from a leader and installed
    /// since it was opened.
    pub fn snapshots_installed(&self) -> u64 {
        self.shared
            .snapshots_installed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many fsynced raft-engine writes this member made since it was
    /// opened. With group commit, far fewer than the entries appended.
    pub fn synced_writes(&self) -> u64 {
        self.shared
            .synced_writes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Event counts since this member was opened (monotonic).
    pub fn counters(&self) -> RaftCounters {
        let c = &self.shared.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::SeqCst);
        RaftCounters {
            rejected_messages: get(&c.rejected_messages),
            step_panics: get(&c.step_panics),
            snapshots_sent: get(&c.snapshots_sent),
            corrupt_snapshots: get(&c.corrupt_snapshots),
            snapshot_writes_started: get(&c.snapshot_writes_started),
            snapshot_writes_finished: get(&c.snapshot_writes_finished),
        }
    }

    /// The member id `to` names: a number is an id; anything else is a peer
    /// address looked up in the replicated peer map (ids are not computed
    /// from addresses: a member that rejoined has a new one).
    fn resolve_member(&self, what: &str, to: &str) -> Result<u64> {
        let to = to.trim();
        if let Ok(id) = to.parse::<u64>() {
            if id != 0 {
                return Ok(id);
            }
        }
        let book = self.shared.book.lock().clone();
        let ids: Vec<u64> = book
            .iter()
            .filter(|(_, p)| p.address.trim() == to)
            .map(|(id, _)| *id)
            .collect();
        match ids.as_slice() {
            [id] => Ok(*id),
            [] => Err(JournalError::config(
                what,
                format!("no member has the address {to:?} (members: {book:?})"),
            )),
            _ => Err(JournalError::config(
                what,
                format!(
                    "several members have the address {to:?} (ids {ids:?}: a member that \
                     rejoined with a new id while its old id is still in the membership); name \
                     the member by id"
                ),
            )),
        }
    }

    /// Asks the member at `address` for its Raft id and RPC address (the
    /// `Hello` call). With `wait`, a member that does not listen yet is
    /// asked again for up to [`JOIN_LISTEN_WAIT`] (about that long in all:
    /// the last attempt is cut to what is left of it).
    async fn ask_id(&self, address: &str, wait: bool) -> Result<(u64, Option<String>)> {
        let dial = self
            .config
            .connect_via
            .get(address)
            .cloned()
            .unwrap_or_else(|| address.to_string());
        let req = crate::proto::HelloRequest {
            cluster_id: self.guard.identity.cluster_id.clone(),
            membership: self.guard.identity.membership,
            from: self.id,
            address: self.guard.identity.address.clone(),
            incarnation: self.guard.incarnation,
            founding: false,
        };
        // A member started a moment ago may not listen yet: an operator (or
        // a script) that starts it and adds it at once should not have to
        // guess how long to wait. Only "nothing listens" is retried; a
        // member that answers and refuses is an answer.
        let started = tokio::time::Instant::now();
        let deadline = started
            + if wait {
                JOIN_LISTEN_WAIT
            } else {
                Duration::ZERO
            };
        let reply = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = crate::bootstrap::ask(
                &self.config.peer_credentials(),
                &dial,
                req.clone(),
                if wait {
                    left.clamp(Duration::from_secs(1), Duration::from_secs(5))
                } else {
                    Duration::from_secs(5)
                },
            )
            .await;
            match r {
                Err(crate::bootstrap::AskError::Unreachable(_))
                    if tokio::time::Instant::now() + Duration::from_millis(200) < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                r => break r,
            }
        }
        .map_err(|why| {
            let why = match why {
                crate::bootstrap::AskError::Unreachable(e) if wait => format!(
                    "nothing listened at {dial} for {:.1} s: {e}",
                    started.elapsed().as_secs_f64()
                ),
                other => other.to_string(),
            };
            JournalError::io(
                format!("member {address}"),
                format!(
                    "cannot ask the new member for its id ({why}); start it (formatted \
                         with JOIN) before adding it, or give its id"
                ),
            )
        })?;
        if reply.cluster_id != self.guard.identity.cluster_id {
            return Err(JournalError::config(
                "add_member",
                format!(
                    "{address} belongs to cluster {:?}, not {:?}",
                    reply.cluster_id, self.guard.identity.cluster_id
                ),
            ));
        }
        let rpc = Some(reply.rpc_address.trim())
            .filter(|r| !r.is_empty())
            .and_then(|r| crate::address::accept(r, "RPC address", address));
        Ok((reply.id, rpc))
    }

    fn dead(&self) -> JournalError {
        match self.shared.failure.lock().clone() {
            Some(f) => JournalError::io(
                self.shared.status.lock().location.clone(),
                format!("the journal stopped: {f}"),
            ),
            None => JournalError::Shutdown,
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Cmd) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(make(tx)).is_err() {
            return Err(self.dead());
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.dead()),
        }
    }

    async fn change_membership(
        &self,
        changes: Vec<(u64, ConfChangeType)>,
        context: Vec<u8>,
    ) -> Result<()> {
        let mut cc = ConfChangeV2::default();
        cc.set_transition(ConfChangeTransition::Implicit);
        cc.set_changes(
            changes
                .into_iter()
                .map(|(id, ty)| {
                    let mut single = raft::eraftpb::ConfChangeSingle {
                        node_id: id,
                        ..Default::default()
                    };
                    single.set_change_type(ty);
                    single
                })
                .collect::<Vec<_>>()
                .into(),
        );
        cc.context = context.into();
        self.ask(|reply| Cmd::ConfChange { cc, reply }).await?;
        // Implicit transition: raft leaves the joint configuration by itself.
        self.wait_for(
            "the membership change to leave joint consensus",
            self.change_timeout(),
            |s| s.conf.lock().voters_outgoing.is_empty(),
        )
        .await
    }

    fn change_timeout(&self) -> Duration {
        (self.config.election_timeout_max * 20).max(Duration::from_secs(30))
    }

    async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Shared) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(&self.shared) {
                return Ok(());
            }
            if self.shared.failure.lock().is_some() {
                return Err(self.dead());
            }
            if Instant::now() > deadline {
                return Err(JournalError::Timeout {
                    what: what.to_string(),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl JournalSystem for RaftJournal {
    /// Primary { epoch: Raft term } while leading with an applied entry of its own term.
    fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Ok only once the entry is committed by a quorum (each fsynced it)
    /// and applied here; `NotPrimary` (with the leader's peer address) when
    /// not primary or when leadership is lost before it committed;
    /// `InvalidEntry` for empty or oversized entries.
    async fn propose(&self, entry: Bytes) -> Result<Bytes> {
        if entry.is_empty() {
            return Err(JournalError::InvalidEntry {
                detail: "an entry must not be empty".into(),
            });
        }
        if entry.len() > self.config.max_entry_bytes() {
            return Err(JournalError::InvalidEntry {
                detail: format!(
                    "{} bytes exceeds the {} byte limit ({} less framing)",
                    entry.len(),
                    self.config.max_entry_bytes(),
                    crate::config::KEY_MAX_MESSAGE
                ),
            });
        }
        // The permit stays with the proposal inside the driver until it is
        // answered, so neither the command queue nor the map of proposals
        // waiting for a quorum grows past the limits.
        let permit = self.pending.admit(entry.len())?;
        self.ask(|reply| Cmd::Propose(entry, reply, permit)).await
    }

    /// Raft ReadIndex: Ok once a quorum confirmed this leadership after the
    /// call and everything committed before it is applied here.
    async fn read_barrier(&self) -> Result<()> {
        self.ask(Cmd::Read).await
    }

    /// Writes a verified snapshot file of the applied state (fsynced,
    /// renamed into place) and compacts the log; returns the first sequence
    /// number it does not cover.
    async fn checkpoint(&self) -> Result<u64> {
        self.ask(Cmd::Checkpoint).await
    }

    /// Members with their peer address, RPC address (when known), role
    /// (LEADER/FOLLOWER/LEARNER) and, on the leader, each member's matched
    /// (durable) index in `applied`; `leader_address` is the leader's RPC
    /// address (see `RaftJournalConfig::rpc_address`).
    fn status(&self) -> JournalStatus {
        self.shared.status.lock().clone()
    }

    /// `to` is a member id or peer address. Returns once this member sees
    /// `to` as leader; `Timeout` if that does not happen.
    async fn transfer_leadership(&self, to: &str) -> Result<()> {
        let target = self.resolve_member("transfer_leadership", to)?;
        self.ask(|reply| Cmd::Transfer(target, reply)).await?;
        let timeout = (self.config.election_timeout_max * 10).max(Duration::from_secs(10));
        self.wait_for(
            &format!("leadership to move to member {to}"),
            timeout,
            |s| *s.leader_id.lock() == target,
        )
        .await
    }

    /// Adds the member as a learner (joint consensus, ConfChangeV2), waits
    /// until it replicated what was applied here (it starts from a snapshot),
    /// then promotes it to voter. `id` may be empty (derived from `address`).
    async fn add_member(&self, id: &str, address: &str) -> Result<()> {
        let address = address.trim();
        // One address (not a list): it is replicated in the peer map.
        crate::address::check(address).map_err(|why| JournalError::config("add_member", why))?;
        let (new_id, rpc) = if id.trim().is_empty() {
            // The member says who it is (and where clients reach it): a JOIN
            // member's id is not derivable from its address.
            self.ask_id(address, true).await?
        } else {
            let id = id
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|i| *i != 0)
                .ok_or_else(|| {
                    JournalError::config("add_member", format!("{id:?} is not a member id"))
                })?;
            // Its RPC address if it answers as that member; otherwise it is
            // replicated when the member first leads. The id is given, so
            // an absent member is not waited for.
            let rpc = match self.ask_id(address, false).await {
                Ok((asked, rpc)) if asked == id => rpc,
                _ => None,
            };
            (id, rpc)
        };
        let mut ctx = Peers::new();
        ctx.insert(new_id, Peer::with_rpc(address, rpc.as_deref()));
        let known = self.shared.conf.lock().clone();
        if known.voters.contains(&new_id) {
            return Ok(());
        }
        if !known.learners.contains(&new_id) {
            // Learner first: it catches up (from a snapshot) without voting.
            self.change_membership(
                vec![(new_id, ConfChangeType::AddLearnerNode)],
                encode_peers(&ctx),
            )
            .await?;
        }
        let target = self.status().last_applied;
        // Only the leader tracks the learner's progress: once this member
        // stops leading (a handoff, its master stopping) the wait ends with
        // `NotPrimary`, so the caller retries on the new primary, which
        // finds the learner and finishes the change.
        let role = self.role.clone();
        self.wait_for(
            &format!("new member {new_id} to catch up to {target}"),
            self.change_timeout(),
            |s| {
                !role.borrow().is_primary()
                    || s.progress.lock().get(&new_id).copied().unwrap_or(0) >= target
            },
        )
        .await?;
        if !self.role.borrow().is_primary() {
            return Err(JournalError::NotPrimary {
                leader_hint: self.status().leader_address,
            });
        }
        self.change_membership(vec![(new_id, ConfChangeType::AddNode)], encode_peers(&ctx))
            .await
    }

    /// Removes a member (id or peer address) through joint consensus;
    /// returns once the joint configuration was left.
    async fn remove_member(&self, id: &str) -> Result<()> {
        let target = self.resolve_member("remove_member", id)?;
        let known = self.shared.conf.lock().clone();
        if !known.voters.contains(&target) && !known.learners.contains(&target) {
            return Err(JournalError::config(
                "remove_member",
                format!("{id} (id {target}) is not a member"),
            ));
        }
        if target == self.id {
            return Err(JournalError::config(
                "remove_member",
                format!(
                    "{id} is this member, the primary: transfer leadership to another member \
                     and remove it from there"
                ),
            ));
        }
        self.change_membership(vec![(target, ConfChangeType::RemoveNode)], Vec::new())
            .await
    }

    /// Stops the driver (pending calls fail with `Shutdown`), the peer
    /// senders and the peer server. Idempotent.
    async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let _ = self.cmds.send(Cmd::Shutdown);
        let thread = self.driver.lock().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let server = self.server.lock().take();
        if let Some(mut server) = server {
            if tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                tracing::warn!(
                    member = self.id,
                    "peer server did not stop in 5s; aborting it"
                );
                server.abort();
                let _ = server.await;
            }
        }
        // Only now: nothing of this member runs any more.
        self.lock.lock().take();
    }
}

impl Drop for RaftJournal {
    /// Without `shutdown()`: stops the driver and waits for it (it closes
    /// the log), so the directory lock is free when this returns; the peer
    /// server stops on its own shortly after.
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        let _ = self.cmds.send(Cmd::Shutdown);
        if let Some(thread) = self.driver.lock().take() {
            let _ = thread.join();
        }
        self.lock.lock().take();
    }
}
