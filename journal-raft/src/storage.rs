//! Durable Raft state: log entries, hard state and conf state in raft-engine
//! (`<data_dir>/log`), snapshot files beside it (`<data_dir>/snapshots`).
//!
//! Every write that raft-rs must see durable goes through
//! [`RaftStorage::persist`] with `sync = true`. raft-engine is opened in
//! `AbsoluteConsistency` mode so a damaged record is an error; the one
//! tolerated damage is at the very end of the newest log file (space
//! preallocated by `fallocate` and never written, or a batch torn by a crash),
//! which is truncated and logged (see `open_engine`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use journal_core::{JournalError, Result};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};
use raft_engine::{Engine, LogBatch, MessageExt, RecoveryMode};

use crate::format::DirLock;

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

/// One member of the replicated peer map: where the other members reach it
/// (peer address) and, when it advertised one, where clients reach it (RPC
/// address, `alluxio.master.hostname:alluxio.master.rpc.port`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    /// Where the other members reach it (`host:peer_port`).
    pub address: String,
    /// Where clients reach it, if it advertised it.
    pub rpc: Option<String>,
}

impl Peer {
    /// A member whose RPC address is not known (yet).
    pub fn at(address: impl Into<String>) -> Peer {
        Peer {
            address: address.into(),
            rpc: None,
        }
    }

    /// A member with its RPC address, if any (empty or blank: none).
    pub fn with_rpc(address: impl Into<String>, rpc: Option<&str>) -> Peer {
        Peer {
            address: address.into(),
            rpc: rpc
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        }
    }
}

/// Member id → (peer address, RPC address), as replicated through conf
/// changes and snapshots.
pub type Peers = BTreeMap<u64, Peer>;

/// Encodes a peer map as `id address [rpc_address]` lines.
///
/// Unambiguous for every entry [`decode_peers`] can produce: a checked
/// address (see [`crate::address::check`]) holds no space, newline or other
/// whitespace, so each entry is exactly one line of two or three fields and
/// decodes to itself. An entry that would break that (id 0, an address that
/// fails the check) is left out and logged; one whose RPC address fails the
/// check is kept without it. Every way into the map checks first, so this
/// only guards against a path that forgot to.
pub fn encode_peers(peers: &Peers) -> Vec<u8> {
    let mut out = String::new();
    for (id, p) in peers {
        if *id == 0 {
            tracing::error!(address = %p.address, "peer map entry with id 0 not stored");
            continue;
        }
        if let Err(why) = crate::address::check(&p.address) {
            tracing::error!(peer = id, %why, "peer map entry with an unusable address not stored");
            continue;
        }
        let rpc = p.rpc.as_deref().filter(|r| match crate::address::check(r) {
            Ok(()) => true,
            Err(why) => {
                tracing::error!(peer = id, %why, "unusable RPC address not stored");
                false
            }
        });
        match rpc {
            Some(rpc) => out.push_str(&format!("{id} {} {rpc}\n", p.address)),
            None => out.push_str(&format!("{id} {}\n", p.address)),
        }
    }
    out.into_bytes()
}

/// Decodes [`encode_peers`]. Lines end at `\n` only; a line is kept when it
/// is `id address` or `id address rpc` separated by single spaces, with a
/// non-zero decimal id and addresses [`crate::address::check`] accepts.
/// Anything else (the map arrives from peers, in snapshots and membership
/// changes) is skipped with a warning rather than stored half-understood:
/// what is returned re-encodes to bytes that decode to the same map.
pub fn decode_peers(bytes: &[u8]) -> Peers {
    let mut peers = Peers::new();
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match decode_peer_line(line) {
            Ok((id, peer)) => {
                peers.insert(id, peer);
            }
            Err(why) => {
                tracing::warn!(line = %String::from_utf8_lossy(line).escape_debug(), %why, "skipped a peer map entry");
            }
        }
    }
    peers
}

fn decode_peer_line(line: &[u8]) -> std::result::Result<(u64, Peer), String> {
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let fields: Vec<&str> = line.split(' ').collect();
    let (id, addr, rpc) = match fields[..] {
        [id, addr] => (id, addr, None),
        [id, addr, rpc] => (id, addr, Some(rpc)),
        _ => return Err("not 2 or 3 space-separated fields".to_string()),
    };
    let id = Some(id)
        .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|i| i.parse::<u64>().ok())
        .filter(|i| *i != 0)
        .ok_or_else(|| format!("{id:?} is not a member id"))?;
    crate::address::check(addr)?;
    if let Some(rpc) = rpc {
        crate::address::check(rpc)?;
    }
    Ok((id, Peer::with_rpc(addr, rpc)))
}

fn engine_err(location: &str, e: raft_engine::Error) -> JournalError {
    match e {
        raft_engine::Error::Io(io) => JournalError::io(location, io),
        other => JournalError::corrupt(location, other.to_string()),
    }
}

/// The raft-engine log directory inside a data dir.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

/// The snapshot directory inside a data dir.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// The file name of the snapshot at `index`/`term`.
pub fn snapshot_file(dir: &Path, index: u64, term: u64) -> PathBuf {
    dir.join(format!("snap-{index:016x}-{term:016x}"))
}

fn engine_config(dir: &Path) -> raft_engine::Config {
    raft_engine::Config {
        dir: dir.to_string_lossy().into_owned(),
        recovery_mode: RecoveryMode::AbsoluteConsistency,
        // Recycled files hold stale bytes past the tail, which would make a
        // torn tail indistinguishable from corruption.
        enable_log_recycle: false,
        target_file_size: raft_engine::ReadableSize::mb(64),
        purge_threshold: raft_engine::ReadableSize::gb(1),
        ..Default::default()
    }
}

/// Size of a raft-engine log file header (magic, version, alignment).
const FILE_HEADER_LEN: usize = 53 + 8 + 8;
const BATCH_HEADER_LEN: usize = 16;

/// One batch as laid out in a raft-engine log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    /// Offset of the batch header in the file.
    pub offset: usize,
    /// Length of the whole batch, header included.
    pub len: usize,
}

/// What walking the batch headers of a log file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWalk {
    /// Batches whose header parsed and that end inside the file.
    pub batches: Vec<BatchSpan>,
    /// Where the walk stopped.
    pub end: usize,
    /// The bytes from `end` to the end of the file are all zero (or none).
    pub zero_tail: bool,
    /// The walk stopped at a batch that runs past the end of the file (or a
    /// partial header).
    pub torn_at: Option<usize>,
}

/// Walks the batch headers of a raft-engine log file (format V2, no alignment).
pub fn walk_log_file(bytes: &[u8]) -> FileWalk {
    walk_log_file_from(bytes, FILE_HEADER_LEN)
}

/// Walks batch headers starting at byte `start`.
pub fn walk_log_file_from(bytes: &[u8], start: usize) -> FileWalk {
    walk_inner(bytes, start, data_end(bytes))
}

/// One past the last non-zero byte.
fn data_end(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|b| *b != 0)
        .map(|p| p + 1)
        .unwrap_or(0)
}

fn walk_inner(bytes: &[u8], start: usize, data_end: usize) -> FileWalk {
    let mut batches = Vec::new();
    let mut at = start.min(bytes.len());
    let mut torn_at = None;
    while at < data_end {
        let rest = &bytes[at..];
        if rest.len() < BATCH_HEADER_LEN {
            torn_at = Some(at);
            break;
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&rest[..8]);
        let len_and_type = u64::from_be_bytes(w);
        let len = (len_and_type >> 8) as usize;
        // Compression: 0 none, 1 lz4.
        let compression = (len_and_type & 0xff) as u8;
        w.copy_from_slice(&rest[8..16]);
        let item_offset = u64::from_be_bytes(w) as usize;
        if compression > 1 || item_offset < BATCH_HEADER_LEN || item_offset > len {
            break;
        }
        if len > rest.len() {
            torn_at = Some(at);
            break;
        }
        batches.push(BatchSpan { offset: at, len });
        at += len;
    }
    let zero_tail = at >= data_end;
    FileWalk {
        batches,
        end: at,
        zero_tail,
        torn_at,
    }
}

/// The newest append-queue file of a raft-engine directory.
pub fn newest_log_file(dir: &Path) -> Result<Option<PathBuf>> {
    let mut newest: Option<(u64, PathBuf)> = None;
    let read =
        std::fs::read_dir(dir).map_err(|e| JournalError::io(dir.display().to_string(), e))?;
    for entry in read {
        let entry = entry.map_err(|e| JournalError::io(dir.display().to_string(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name
            .strip_suffix(".raftlog")
            .and_then(|s| s.parse::<u64>().ok())
        {
            if newest.as_ref().map(|(s, _)| seq > *s).unwrap_or(true) {
                newest = Some((seq, entry.path()));
            }
        }
    }
    Ok(newest.map(|(_, p)| p))
}

/// True when a chain of well-formed batch headers starts somewhere after
/// `from` and runs exactly to the end of the data (or to zero padding): the
/// bytes after a "torn" header are then real batches, i.e. the header was
/// damaged, not torn.
pub fn has_valid_chain_after(bytes: &[u8], from: usize) -> bool {
    let data_end = data_end(bytes);
    let mut p = from + 1;
    while p + BATCH_HEADER_LEN <= data_end {
        let walk = walk_inner(bytes, p, data_end);
        if !walk.batches.is_empty() && walk.torn_at.is_none() && walk.zero_tail {
            return true;
        }
        p += 1;
    }
    false
}

/// Copies the log directory beside itself, cuts the copy of `file` at
/// `cut`, and says whether raft-engine opens the copy cleanly. The real
/// files are not touched.
fn probe_cut(dir: &Path, file: &Path, cut: usize) -> Result<bool> {
    let probe = dir.with_extension("probe");
    let loc = probe.display().to_string();
    if probe.exists() {
        std::fs::remove_dir_all(&probe).map_err(|e| JournalError::io(&loc, e))?;
    }
    std::fs::create_dir_all(&probe).map_err(|e| JournalError::io(&loc, e))?;
    let outcome = (|| -> Result<bool> {
        let read =
            std::fs::read_dir(dir).map_err(|e| JournalError::io(dir.display().to_string(), e))?;
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_file() {
                let target = probe.join(entry.file_name());
                std::fs::copy(&path, &target).map_err(|e| JournalError::io(&loc, e))?;
                if path == file {
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&target)
                        .map_err(|e| JournalError::io(&loc, e))?;
                    f.set_len(cut as u64)
                        .map_err(|e| JournalError::io(&loc, e))?;
                }
            }
        }
        Ok(Engine::open(engine_config(&probe)).is_ok())
    })();
    let _ = std::fs::remove_dir_all(&probe);
    outcome
}

/// Opens raft-engine in `AbsoluteConsistency` mode. If that fails, looks at
/// the end of the newest log file for the damage a crash leaves and nothing
/// else: zeros after the last batch (space preallocated by `fallocate` and
/// never written), a last batch that runs past the end of the file, or a
/// last batch followed only by zeros that fails its checksum (a write torn
/// by a power loss). Each repair is first tried on a copy of the directory;
/// only a repair that makes the log open cleanly is applied (and logged).
/// Anything else is `Corrupt` naming the file, and nothing is changed.
///
/// A bit flip inside the very last batch of the newest file cannot be told
/// from a torn write and is truncated like one; everywhere else it is
/// reported.
pub(crate) fn open_engine(dir: &Path) -> Result<Engine> {
    std::fs::create_dir_all(dir).map_err(|e| JournalError::io(dir.display().to_string(), e))?;
    let location = dir.display().to_string();
    let first = match Engine::open(engine_config(dir)) {
        Ok(engine) => return Ok(engine),
        Err(raft_engine::Error::Io(e)) => return Err(JournalError::io(location, e)),
        // raft-engine's own directory lock: someone else may be writing
        // these files, so they are not a torn tail to repair.
        Err(e) if e.to_string().contains("Failed to lock file") => {
            return Err(JournalError::io(
                location,
                format!(
                    "the log directory is in use by another instance, nothing was repaired: {e}"
                ),
            ))
        }
        Err(e) => e,
    };
    let Some(file) = newest_log_file(dir)? else {
        return Err(engine_err(&location, first));
    };
    let file_loc = file.display().to_string();
    let bytes = std::fs::read(&file).map_err(|e| JournalError::io(&file_loc, e))?;
    let walk = walk_log_file(&bytes);
    let refuse = |why: &str| {
        JournalError::corrupt(
            &file_loc,
            format!("raft-engine refused the log ({first}); {why}, so nothing was truncated"),
        )
    };
    let mut candidates = Vec::new();
    match walk.torn_at {
        Some(at) if has_valid_chain_after(&bytes, at) => {
            return Err(refuse(&format!(
                "the batch header at byte {at} is damaged (valid batches follow it)"
            )))
        }
        Some(at) => candidates.push((at, "a batch torn by a crash")),
        None if walk.zero_tail => {
            if walk.end < bytes.len() {
                candidates.push((walk.end, "space preallocated and never written"));
            }
            if let Some(last) = walk.batches.last() {
                candidates.push((last.offset, "a last batch torn by a crash"));
            }
        }
        None => {
            return Err(refuse(&format!(
                "unreadable data at byte {} is not a torn tail",
                walk.end
            )))
        }
    }
    for (cut, what) in candidates {
        if probe_cut(dir, &file, cut)? {
            tracing::warn!(
                file = %file_loc,
                offset = cut,
                dropped_bytes = bytes.len() - cut,
                "truncating the unacknowledged tail of the Raft log: {what} ({first})"
            );
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .map_err(|e| JournalError::io(&file_loc, e))?;
            f.set_len(cut as u64)
                .map_err(|e| JournalError::io(&file_loc, e))?;
            f.sync_all().map_err(|e| JournalError::io(&file_loc, e))?;
            return Engine::open(engine_config(dir)).map_err(|e| engine_err(&file_loc, e));
        }
    }
    Err(refuse("the damage is not confined to the tail"))
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
    /// open as `Corrupt` instead of failing Raft later.
    fn verify_entries(&self, first: u64, last: u64) -> Result<()> {
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
        self.engine.compact_to(GROUP, compact_to.min(index + 1));
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

    fn last(&self) -> u64 {
        self.engine
            .last_index(GROUP)
            .unwrap_or(0)
            .max(self.snapshot.index)
    }

    fn first(&self) -> u64 {
        match self.engine.first_index(GROUP) {
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
        let mut out = Vec::with_capacity((high - low) as usize);
        let max = max_size.into().map(|m| m as usize);
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

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snapshot.index {
            return Ok(self.snapshot.term);
        }
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

/// A state machine that only reads a snapshot to its end, to verify a
/// received file's frames and trailer without touching the real state.
pub(crate) struct Discard;

impl journal_core::StateMachine for Discard {
    fn apply(&mut self, _seq: u64, _entry: &[u8]) -> bytes::Bytes {
        bytes::Bytes::new()
    }
    fn snapshot(&self, _out: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }
    fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        std::io::copy(input, &mut std::io::sink()).map(|_| ())
    }
}

/// Verifies every frame of the snapshot file at `path`.
pub fn verify_snapshot_file(path: &Path) -> Result<journal_core::snapshot::SnapshotMeta> {
    let loc = path.display().to_string();
    let f = File::open(path).map_err(|e| JournalError::io(&loc, e))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    journal_core::snapshot::restore_snapshot(&mut Discard, &mut r, &loc)
}

/// Checks that a snapshot stream's header belongs to this cluster and to the
/// Raft snapshot at `index`/`term`; `Corrupt` naming `location` otherwise.
pub fn check_snapshot_header(
    meta: &journal_core::snapshot::SnapshotMeta,
    cluster_id: &str,
    index: u64,
    term: u64,
    location: &str,
) -> Result<()> {
    if meta.cluster_id != cluster_id {
        return Err(JournalError::corrupt(
            location,
            format!(
                "snapshot of cluster {:?}, this member belongs to {cluster_id:?}",
                meta.cluster_id
            ),
        ));
    }
    if meta.next_seq != index.saturating_add(1) || meta.epoch != term {
        return Err(JournalError::corrupt(
            location,
            format!(
                "the file covers up to {} (term {}) but the Raft snapshot is at {index} (term {term})",
                meta.next_seq.saturating_sub(1),
                meta.epoch
            ),
        ));
    }
    Ok(())
}

/// Verifies a whole snapshot file (every frame, trailer) and that it is the
/// snapshot at `index`/`term` of `cluster_id`.
pub fn verify_snapshot_file_for(
    path: &Path,
    cluster_id: &str,
    index: u64,
    term: u64,
) -> Result<()> {
    let meta = verify_snapshot_file(path)?;
    check_snapshot_header(&meta, cluster_id, index, term, &path.display().to_string())
}

/// Moves a damaged snapshot file aside (`damaged-<name>`, never read or
/// pruned as a snapshot) so it is kept for inspection but never sent again.
pub fn quarantine_snapshot_file(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = path.with_file_name(format!("damaged-{name}"));
    std::fs::rename(path, &target)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(target)
}

/// Writes `bytes` at `offset` of `path` (test and repair helper).
pub fn overwrite_at(path: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_round_trip() {
        let mut p = Peers::new();
        p.insert(7, Peer::at("h1:19200"));
        p.insert(9, Peer::with_rpc("[::1]:19201", Some("[::1]:19998")));
        assert_eq!(decode_peers(&encode_peers(&p)), p);
        assert!(decode_peers(b"garbage\nx y\n1 a b c\n").is_empty());
        // A line without an RPC address (a member that advertised none).
        assert_eq!(decode_peers(b"3 h:1\n")[&3], Peer::at("h:1"));
    }

    /// The `raft_storage` fuzz target's findings: a stored address ending in
    /// `\r` lost it on the way back, and a newline in an address was a
    /// second member.
    #[test]
    fn peer_lines_cannot_be_forged_or_changed() {
        // Decoded once, `\r` survived; re-encoded, `lines()` ate it.
        let p = decode_peers(b"1 m1:1920\r");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(decode_peers(&encode_peers(&p)), p);
        let p = decode_peers(b"1 m1:19200 m1:19998\r\n2 m2:19200\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[&2], Peer::at("m2:19200"));
        // An address with a line break stores no extra member: it is
        // refused on the way in and on the way out.
        let mut forged = Peers::new();
        forged.insert(5, Peer::at("h5:1\n6 evil:66"));
        forged.insert(7, Peer::with_rpc("h7:1", Some("r7:1\n8 evil:88")));
        let bytes = encode_peers(&forged);
        let back = decode_peers(&bytes);
        assert_eq!(back.len(), 1, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(back[&7], Peer::at("h7:1"));
        // Ids: decimal, non-zero; fields: single spaces.
        for bad in [
            &b"0 h:1\n"[..],
            b"+1 h:1\n",
            b"1  h:1\n",
            b"1 h:1 \n",
            b"1\th:1\n",
            b"1 h:1 r:2 x:3\n",
            b"1 h\xff:1\n",
        ] {
            assert!(
                decode_peers(bad).is_empty(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn batch(len: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((len as u64) << 8).to_be_bytes());
        b.extend_from_slice(&(16u64).to_be_bytes());
        b.resize(len, 0xab);
        b
    }

    #[test]
    fn walk_tells_torn_tails_and_zero_padding_apart() {
        let mut file = vec![0x11u8; FILE_HEADER_LEN];
        file.extend(batch(40));
        file.extend(batch(30));
        let clean = walk_log_file(&file);
        assert_eq!(clean.batches.len(), 2);
        assert_eq!(
            (clean.end, clean.torn_at, clean.zero_tail),
            (file.len(), None, true)
        );

        let mut padded = file.clone();
        padded.extend(std::iter::repeat_n(0u8, 4096));
        let w = walk_log_file(&padded);
        assert_eq!((w.end, w.torn_at, w.zero_tail), (file.len(), None, true));

        let mut torn = file.clone();
        torn.extend(&batch(50)[..20]);
        let w = walk_log_file(&torn);
        assert_eq!(w.torn_at, Some(file.len()));

        let mut garbage = file.clone();
        garbage.extend([0xffu8; 3]);
        garbage.extend(batch(20));
        let w = walk_log_file(&garbage);
        let at = w.torn_at.expect("the damaged header reads as torn");
        assert!(has_valid_chain_after(&garbage, at), "{w:?}");
        assert!(!has_valid_chain_after(&torn, file.len()));
    }
}
