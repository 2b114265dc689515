//! Durable Raft state: log entries, hard state and conf state in raft-engine
//! (`<data_dir>/log`), snapshot files beside it (`<data_dir>/snapshots`).
//!
//! Every write that raft-rs must see durable goes through
//! [`RaftStorage::persist`] with `sync = true`. raft-engine is opened in
//! `AbsoluteConsistency` mode so a damaged record is an error; the one
//! tolerated damage is at the very end of the newest log file (space
//! preallocated by `fallocate` and never written, or a batch torn by a crash),
//! which is truncated and logged (see `open_engine`).
//!
//! Reads on the hot path do not go back to raft-engine: the terms of the
//! whole log are kept as runs ([`term_index`]) and the newest entries in a
//! bounded cache ([`tail_cache`]), both updated only after the engine write
//! they mirror succeeded.

mod engine_file;
mod peers;
mod snapshot_file;
mod tail_cache;
mod term_index;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use journal_core::{JournalError, Result};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};
use raft_engine::{Engine, LogBatch, MessageExt};

use crate::format::DirLock;
use engine_file::engine_err;
pub(crate) use engine_file::open_engine;
pub use engine_file::{
    has_valid_chain_after, log_dir, newest_log_file, walk_log_file, walk_log_file_from, BatchSpan,
    FileWalk,
};
pub use peers::{decode_peers, encode_peers, Peer, Peers};
pub use snapshot_file::{
    check_snapshot_header, overwrite_at, quarantine_snapshot_file, snapshot_dir, snapshot_file,
    sync_dir, verify_snapshot_file, verify_snapshot_file_for,
};
use tail_cache::TailCache;
pub use tail_cache::DEFAULT_LOG_CACHE_BYTES;
use term_index::TermIndex;

/// The one raft group this engine holds.
const GROUP: u64 = 1;
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const KEY_PEERS: &[u8] = b"peers";
const KEY_CONF_INDEX: &[u8] = b"conf_index";
/// The founders this member saw with no state when it bootstrapped the
/// group: `address incarnation` lines (see `bootstrap.rs`).
const KEY_FOUNDERS: &[u8] = b"founders";

/// raft-engine's view of a raft-rs entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryExt;

impl MessageExt for EntryExt {
    type Entry = Entry;

    fn index(e: &Entry) -> u64 {
        e.index
    }
}

/// raft-rs `Storage` over raft-engine, plus the snapshot bookkeeping.
///
/// Guarantees: `hard_state`, `conf_state`, entries and the snapshot marker
/// reported to raft-rs are exactly what was last written with
/// [`RaftStorage::persist`] / [`RaftStorage::install_snapshot`]; a snapshot
/// marker is written only after its file is fsynced.
pub struct RaftStorage {
    engine: Arc<Engine>,
    location: String,
    snap_dir: PathBuf,
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: SnapshotMetadata,
    peers: Peers,
    conf_index: u64,
    snapshot_wanted: std::cell::Cell<bool>,
    /// The newest snapshot's file was found damaged (and moved aside): it
    /// must not be offered to raft-rs until a fresh one is marked.
    snapshot_damaged: bool,
    /// The term of every entry raft-engine holds.
    terms: TermIndex,
    /// The newest entries raft-engine holds, up to a byte bound.
    tail: TailCache,
    // Last, so it is released only after the engine above is closed (the
    // journal holds another handle until its peer server stopped).
    lock: Arc<DirLock>,
}

impl RaftStorage {
    /// Opens (or creates) the storage under `data_dir`. A fresh storage whose
    /// `bootstrap` peers are given starts with them as voters.
    ///
    /// The data directory is locked ([`DirLock`]) before anything in it is
    /// read, cleaned or repaired; a directory another process or instance
    /// holds is an `Io` error and nothing in it changes.
    pub fn open(data_dir: &Path, bootstrap: Option<&Peers>) -> Result<RaftStorage> {
        let lock = DirLock::acquire(data_dir)?;
        RaftStorage::open_locked(lock, data_dir, bootstrap)
    }

    /// [`RaftStorage::open`] with the directory's lock already taken; the
    /// storage keeps the lock until it is dropped.
    ///
    /// Errors: `Io` when `lock` is not the lock of `data_dir`.
    pub fn open_locked(
        lock: DirLock,
        data_dir: &Path,
        bootstrap: Option<&Peers>,
    ) -> Result<RaftStorage> {
        let expected = data_dir.join(crate::format::LOCK_FILE);
        let same = match (
            std::fs::canonicalize(lock.path()),
            std::fs::canonicalize(&expected),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same {
            return Err(JournalError::io(
                expected.display().to_string(),
                format!(
                    "the lock handed to the storage is {}, not this directory's: nothing was \
                     opened or repaired",
                    lock.path().display()
                ),
            ));
        }
        let dir = log_dir(data_dir);
        let snap_dir = snapshot_dir(data_dir);
        std::fs::create_dir_all(&snap_dir)
            .map_err(|e| JournalError::io(snap_dir.display().to_string(), e))?;
        // Temporaries of snapshots that were being written or received at a crash.
        if let Ok(read) = std::fs::read_dir(&snap_dir) {
            for entry in read.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let engine = open_engine(&dir)?;
        let location = dir.display().to_string();
        let get = |key: &[u8]| -> Result<Option<Vec<u8>>> { Ok(engine.get(GROUP, key)) };
        let hard_state = match get(KEY_HARD_STATE)? {
            Some(b) => HardState::parse_from_bytes(&b)
                .map_err(|e| JournalError::corrupt(&location, format!("hard state: {e}")))?,
            None => HardState::default(),
        };
        let conf_state = match get(KEY_CONF_STATE)? {
            Some(b) => ConfState::parse_from_bytes(&b)
                .map_err(|e| JournalError::corrupt(&location, format!("conf state: {e}")))?,
            None => ConfState::default(),
        };
        let snapshot = match get(KEY_SNAPSHOT)? {
            Some(b) => SnapshotMetadata::parse_from_bytes(&b)
                .map_err(|e| JournalError::corrupt(&location, format!("snapshot marker: {e}")))?,
            None => SnapshotMetadata::default(),
        };
        let peers = get(KEY_PEERS)?
            .map(|b| decode_peers(&b))
            .unwrap_or_default();
        let conf_index = match get(KEY_CONF_INDEX)? {
            Some(b) => u64::from_be_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| JournalError::corrupt(&location, "conf index is not 8 bytes"))?,
            ),
            None => 0,
        };
        let mut storage = RaftStorage {
            engine: Arc::new(engine),
            location,
            snap_dir,
            hard_state,
            conf_state,
            snapshot,
            peers,
            conf_index,
            snapshot_wanted: std::cell::Cell::new(false),
            snapshot_damaged: false,
            terms: TermIndex::default(),
            tail: TailCache::default(),
            lock: Arc::new(lock),
        };
        let fresh = storage.conf_state == ConfState::default()
            && storage.engine.last_index(GROUP).is_none()
            && storage.snapshot.index == 0;
        if fresh {
            if let Some(peers) = bootstrap {
                let cs = ConfState {
                    voters: peers.keys().copied().collect(),
                    ..Default::default()
                };
                storage.set_conf_state(cs, peers.clone(), 0, true)?;
            }
        }
        if let (Some(first), Some(last)) = (
            storage.engine.first_index(GROUP),
            storage.engine.last_index(GROUP),
        ) {
            storage.verify_entries(first, last)?;
            if first > storage.snapshot.index + 1 {
                return Err(JournalError::corrupt(
                    &storage.location,
                    format!(
                        "the log starts at {first} but the newest snapshot covers only up to {}",
                        storage.snapshot.index
                    ),
                ));
            }
            tracing::debug!(
                first,
                last,
                snapshot = storage.snapshot.index,
                "raft log opened"
            );
        }
        Ok(storage)
    }

    /// Reads every entry in `first..=last` once, so a damaged entries block
    /// (raft-engine checks those only when they are read) is reported at
    /// open as `Corrupt` instead of failing Raft later, and records their
    /// terms on the way.
    fn verify_entries(&mut self, first: u64, last: u64) -> Result<()> {
        self.terms.clear();
        let mut at = first;
        while at <= last {
            let end = (at + 1024).min(last + 1);
            let mut out = Vec::with_capacity((end - at) as usize);
            let loc = || format!("{} (log entries {at}..{end})", self.location);
            self.engine
                .fetch_entries_to::<EntryExt>(GROUP, at, end, None, &mut out)
                .map_err(|e| JournalError::corrupt(loc(), e.to_string()))?;
            for (i, e) in out.iter().enumerate() {
                if e.index != at + i as u64 {
                    return Err(JournalError::corrupt(
                        loc(),
                        format!("entry {} found where {} belongs", e.index, at + i as u64),
                    ));
                }
                self.terms.push(e.index, e.term);
            }
            if out.len() as u64 != end - at {
                return Err(JournalError::corrupt(
                    loc(),
                    format!("{} of {} entries readable", out.len(), end - at),
                ));
            }
            at = end;
        }
        Ok(())
    }

    /// A second handle on the same durable state, for a fresh `RawNode`
    /// when the old one can no longer be trusted (raft-rs panicked inside
    /// `step`). Its in-memory copies equal what was last written durably,
    /// because every setter updates them only after its write succeeded.
    pub(crate) fn reopen(&self) -> RaftStorage {
        RaftStorage {
            engine: self.engine.clone(),
            location: self.location.clone(),
            snap_dir: self.snap_dir.clone(),
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
            snapshot: self.snapshot.clone(),
            peers: self.peers.clone(),
            conf_index: self.conf_index,
            snapshot_wanted: std::cell::Cell::new(false),
            snapshot_damaged: self.snapshot_damaged,
            terms: self.terms.clone(),
            tail: self.tail.clone(),
            lock: self.lock.clone(),
        }
    }

    /// The founders (address → format incarnation) this member saw with no
    /// state when it bootstrapped the group; empty if it did not.
    pub fn founders(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Some(b) = self.engine.get(GROUP, KEY_FOUNDERS) {
            for line in String::from_utf8_lossy(&b).lines() {
                if let Some((addr, inc)) = line.rsplit_once(' ') {
                    if let Ok(inc) = inc.parse() {
                        out.insert(addr.to_string(), inc);
                    }
                }
            }
        }
        out
    }

    /// Records (fsynced) the founders this member saw empty, before it
    /// bootstraps.
    pub fn set_founders(&mut self, founders: &BTreeMap<String, u64>) -> Result<()> {
        let mut text = String::new();
        for (addr, inc) in founders {
            text.push_str(&format!("{addr} {inc}\n"));
        }
        let mut batch = LogBatch::default();
        batch
            .put(GROUP, KEY_FOUNDERS.to_vec(), text.into_bytes())
            .map_err(|e| engine_err(&self.location, e))?;
        self.engine
            .write(&mut batch, true)
            .map_err(|e| engine_err(&self.location, e))?;
        Ok(())
    }

    /// True when this member holds any Raft state: a conf state, an entry,
    /// a snapshot or a hard state.
    pub fn has_state(&self) -> bool {
        self.conf_state != ConfState::default()
            || self.engine.last_index(GROUP).is_some()
            || self.snapshot.index != 0
            || self.hard_state != HardState::default()
    }

    /// Another handle on the directory lock this storage holds.
    pub(crate) fn lock_handle(&self) -> Arc<DirLock> {
        self.lock.clone()
    }

    /// Where the log lives (for errors and status).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The snapshot directory.
    pub fn snap_dir(&self) -> &Path {
        &self.snap_dir
    }

    /// The metadata of the newest snapshot (index 0: none).
    pub fn snapshot_meta(&self) -> &SnapshotMetadata {
        &self.snapshot
    }

    /// The file of the newest snapshot, if there is one.
    pub fn snapshot_path(&self) -> Option<PathBuf> {
        (self.snapshot.index > 0)
            .then(|| snapshot_file(&self.snap_dir, self.snapshot.index, self.snapshot.term))
    }

    /// The replicated peer map.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// The persisted conf state.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// Records that the newest snapshot's file is damaged: raft-rs is told
    /// none is available (and a new one is wanted) until [`Self::mark_snapshot`].
    pub fn set_snapshot_damaged(&mut self) {
        self.snapshot_damaged = true;
        self.snapshot_wanted.set(true);
    }

    /// True while the newest snapshot's file is known damaged.
    pub fn snapshot_damaged(&self) -> bool {
        self.snapshot_damaged
    }

    /// True (once) when raft-rs asked for a snapshot newer than the newest one.
    pub fn take_snapshot_wanted(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// Appends `entries` (overwriting any conflicting tail) and records
    /// `hard_state`, in one raft-engine write, fsynced when `sync`.
    pub fn persist(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<()> {
        let mut batch = LogBatch::default();
        if !entries.is_empty() {
            // raft-engine's memtable drops the old tail from the first index appended.
            batch
                .add_entries::<EntryExt>(GROUP, entries)
                .map_err(|e| engine_err(&self.location, e))?;
        }
        if let Some(hs) = hard_state {
            batch
                .put_message(GROUP, KEY_HARD_STATE.to_vec(), hs)
                .map_err(|e| engine_err(&self.location, e))?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        journal_core::failpoint!("raft-engine-write-before", |e| {
            Err(JournalError::io(&self.location, e))
        });
        self.engine
            .write(&mut batch, sync)
            .map_err(|e| engine_err(&self.location, e))?;
        // The engine's memtable holds them now: so do the in-memory copies,
        // even if a later step of this call fails.
        self.terms.append(entries);
        self.tail.append(entries);
        // Written (fsynced when `sync`), not yet reported to raft-rs.
        journal_core::failpoint!("raft-engine-write-after", |e| {
            Err(JournalError::io(&self.location, e))
        });
        if let Some(hs) = hard_state {
            self.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Index of the last membership change reflected in the conf state.
    pub fn conf_index(&self) -> u64 {
        self.conf_index
    }

    /// Records a new conf state and peer map, applied at log index
    /// `conf_index` (fsynced when `sync`).
    pub fn set_conf_state(
        &mut self,
        cs: ConfState,
        peers: Peers,
        conf_index: u64,
        sync: bool,
    ) -> Result<()> {
        let mut batch = LogBatch::default();
        batch
            .put(
                GROUP,
                KEY_CONF_INDEX.to_vec(),
                conf_index.to_be_bytes().to_vec(),
            )
            .map_err(|e| engine_err(&self.location, e))?;
        batch
            .put_message(GROUP, KEY_CONF_STATE.to_vec(), &cs)
            .map_err(|e| engine_err(&self.location, e))?;
        batch
            .put(GROUP, KEY_PEERS.to_vec(), encode_peers(&peers))
            .map_err(|e| engine_err(&self.location, e))?;
        self.engine
            .write(&mut batch, sync)
            .map_err(|e| engine_err(&self.location, e))?;
        self.conf_state = cs;
        self.peers = peers;
        self.conf_index = conf_index;
        Ok(())
    }

    /// Records that the snapshot file for `meta` is durable, and drops the
    /// log entries below `compact_to` (at most `meta.index + 1`).
    pub fn mark_snapshot(&mut self, meta: SnapshotMetadata, compact_to: u64) -> Result<()> {
        let mut batch = LogBatch::default();
        batch
            .put_message(GROUP, KEY_SNAPSHOT.to_vec(), &meta)
            .map_err(|e| engine_err(&self.location, e))?;
        self.engine
            .write(&mut batch, true)
            .map_err(|e| engine_err(&self.location, e))?;
        let index = meta.index;
        self.snapshot = meta;
        self.snapshot_damaged = false;
        let compact_to = compact_to.min(index + 1);
        self.engine.compact_to(GROUP, compact_to);
        self.terms.compact_to(compact_to);
        self.tail.compact_to(compact_to);
        if let Err(e) = self.engine.purge_expired_files() {
            tracing::warn!(error = %e, "raft-engine purge failed; old log files stay on disk");
        }
        self.prune_snapshot_files();
        Ok(())
    }

    /// Installs a snapshot received from the leader: drops the whole log,
    /// records hard state, conf state, peers and the snapshot marker, fsynced.
    pub fn install_snapshot(
        &mut self,
        meta: SnapshotMetadata,
        peers: Peers,
        hard_state: &HardState,
    ) -> Result<()> {
        journal_core::failpoint!("raft-snapshot-install-before", |e| {
            Err(JournalError::io(&self.location, e))
        });
        let founders = self.engine.get(GROUP, KEY_FOUNDERS);
        let mut batch = LogBatch::default();
        batch.add_command(GROUP, raft_engine::Command::Clean);
        let e = |e| engine_err(&self.location, e);
        if let Some(f) = founders {
            // Kept: a founder still vouches for the peers it saw empty.
            batch.put(GROUP, KEY_FOUNDERS.to_vec(), f).map_err(e)?;
        }
        batch
            .put_message(GROUP, KEY_HARD_STATE.to_vec(), hard_state)
            .map_err(e)?;
        batch
            .put_message(GROUP, KEY_CONF_STATE.to_vec(), meta.get_conf_state())
            .map_err(e)?;
        batch
            .put(GROUP, KEY_PEERS.to_vec(), encode_peers(&peers))
            .map_err(e)?;
        batch
            .put_message(GROUP, KEY_SNAPSHOT.to_vec(), &meta)
            .map_err(e)?;
        batch
            .put(
                GROUP,
                KEY_CONF_INDEX.to_vec(),
                meta.index.to_be_bytes().to_vec(),
            )
            .map_err(e)?;
        self.engine.write(&mut batch, true).map_err(e)?;
        self.terms.clear();
        self.tail.clear();
        journal_core::failpoint!("raft-snapshot-install-after", |e| {
            Err(JournalError::io(&self.location, e))
        });
        self.conf_index = meta.index;
        self.hard_state = hard_state.clone();
        self.conf_state = meta.get_conf_state().clone();
        self.peers = peers;
        self.snapshot = meta;
        self.snapshot_damaged = false;
        self.prune_snapshot_files();
        Ok(())
    }

    /// Deletes snapshot files older than the newest two and stale temporaries.
    fn prune_snapshot_files(&self) {
        let Ok(read) = std::fs::read_dir(&self.snap_dir) else {
            return;
        };
        let mut snaps: Vec<(String, PathBuf)> = Vec::new();
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("snap-") && !name.ends_with(".tmp") {
                snaps.push((name, entry.path()));
            }
        }
        snaps.sort();
        let keep = snapshot_file(&self.snap_dir, self.snapshot.index, self.snapshot.term);
        let n = snaps.len();
        for (i, (_, path)) in snaps.into_iter().enumerate() {
            if i + 2 < n && path != keep {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// `entries` read back from raft-engine (the tail cache's fallback).
    fn entries_from_engine(
        &self,
        low: u64,
        high: u64,
        max: Option<usize>,
        mut out: Vec<Entry>,
    ) -> raft::Result<Vec<Entry>> {
        self.engine
            .fetch_entries_to::<EntryExt>(GROUP, low, high, max, &mut out)
            .map_err(|e| match e {
                raft_engine::Error::EntryCompacted => raft::Error::Store(StorageError::Compacted),
                raft_engine::Error::EntryNotFound => unavailable(),
                other => raft::Error::Store(StorageError::Other(Box::new(other))),
            })?;
        if out.is_empty() && high > low {
            return Err(unavailable());
        }
        Ok(out)
    }

    /// `term` read back from raft-engine (the term index's fallback).
    fn term_from_engine(&self, idx: u64) -> raft::Result<u64> {
        match self.engine.get_entry::<EntryExt>(GROUP, idx) {
            Ok(Some(e)) => Ok(e.term),
            Ok(None) if idx < self.first() => Err(raft::Error::Store(StorageError::Compacted)),
            Ok(None) if idx == 0 => Ok(0),
            Ok(None) => Err(unavailable()),
            Err(raft_engine::Error::EntryCompacted) => {
                Err(raft::Error::Store(StorageError::Compacted))
            }
            Err(e) => Err(raft::Error::Store(StorageError::Other(Box::new(e)))),
        }
    }

    /// Bounds the cache of the log's newest entries to `bytes` of encoded
    /// entries (0: no cache); the leader sends entries within it to
    /// followers without reading them back from disk.
    pub fn set_log_cache_bytes(&mut self, bytes: usize) {
        self.tail.set_cap(bytes);
    }

    // The term index covers exactly the engine's entries (the attacker test
    // checks its bounds against the engine's after every step), so the
    // bounds raft-rs asks for on every call need no engine lookup.
    fn last(&self) -> u64 {
        self.terms.last().unwrap_or(0).max(self.snapshot.index)
    }

    fn first(&self) -> u64 {
        match self.terms.first() {
            Some(first) => first.min(self.snapshot.index + 1),
            None => self.snapshot.index + 1,
        }
    }
}

fn unavailable() -> raft::Error {
    raft::Error::Store(StorageError::Unavailable)
}

impl raft::Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(unavailable());
        }
        let max = max_size.into().map(|m| m as usize);
        let mut out = Vec::with_capacity((high - low) as usize);
        if self.tail.fetch(low, high, max, &mut out) {
            return Ok(out);
        }
        self.entries_from_engine(low, high, max, out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snapshot.index {
            return Ok(self.snapshot.term);
        }
        match self.terms.term(idx) {
            Some(term) => Ok(term),
            // Outside the log: the engine tells compacted from unavailable.
            None => self.term_from_engine(idx),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let cs = self.snapshot.get_conf_state();
        let lists_peer = cs.voters.contains(&to)
            || cs.learners.contains(&to)
            || cs.voters_outgoing.contains(&to)
            || cs.learners_next.contains(&to);
        // A snapshot older than the peer's own membership would be refused by it.
        if self.snapshot.index == 0
            || self.snapshot_damaged
            || self.snapshot.index < request_index
            || !lists_peer
        {
            self.snapshot_wanted.set(true);
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut snap = Snapshot::default();
        snap.set_metadata(self.snapshot.clone());
        // The file travels separately; the message carries the peer map.
        snap.data = encode_peers(&self.peers).into();
        Ok(snap)
    }
}
