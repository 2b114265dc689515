//! Ownership of a journal data directory: the exclusive `LOCK` held for a
//! journal's whole life, and the `FORMAT` marker that says which group and
//! member the directory belongs to.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use journal_core::{JournalError, Result};
use prost::Message as _;

use crate::config::{
    RaftJournalConfig, KEY_ADDRESSES, KEY_CLUSTER_ID, KEY_HOSTNAME, KEY_MEMBER_ID,
};
use crate::format_proto::RaftFormat;

/// Name of the lock file at the root of a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// An exclusive OS lock (`flock`) on a whole journal data directory.
///
/// Guarantees: while a `DirLock` lives, no other process and no other
/// `DirLock` in this process holds the same directory (the lock belongs to
/// the open file, not to the process). It is released when dropped, and by
/// the OS if the process dies, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct DirLock {
    // Never read: holding the open file is what keeps the lock.
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `data_dir` if needed and locks it, without waiting.
    ///
    /// Errors: `Io` naming `<data_dir>/LOCK` and saying the directory is in
    /// use by another master when someone else holds it; `Io` for any other
    /// failure. Nothing in the directory but the lock file itself is touched.
    pub fn acquire(data_dir: &Path) -> Result<DirLock> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| JournalError::io(data_dir.display().to_string(), e))?;
        let path = data_dir.join(LOCK_FILE);
        let loc = path.display().to_string();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| JournalError::io(&loc, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::io(
                &loc,
                format!(
                    "the journal directory {} is in use by another master (another process or \
                     journal instance holds its lock); two masters must never share a journal \
                     folder, and nothing in it was read or changed",
                    data_dir.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(JournalError::io(&loc, e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Name of the format marker at the root of a data directory.
pub const FORMAT_FILE: &str = "FORMAT";
/// `magic` of every raft journal format marker.
pub const FORMAT_MAGIC: &str = "primacy-raft-journal";
/// The directory layout this code reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

/// The format marker of `data_dir`.
pub fn format_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FORMAT_FILE)
}

/// Reads `<data_dir>/FORMAT`: `Ok(None)` when there is none; `Corrupt`
/// naming the file when it does not frame, checksum or decode (a damaged
/// marker is never taken for another cluster's); `ForeignJournal` when it
/// is intact but not a primacy raft marker of this layout version.
pub fn read_marker(data_dir: &Path) -> Result<Option<RaftFormat>> {
    let path = format_path(data_dir);
    let loc = path.display().to_string();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io(&loc, e)),
    };
    parse_marker(&bytes, data_dir).map(Some)
}

/// Decodes the bytes of `<data_dir>/FORMAT` (see [`read_marker`] for how
/// damage and foreign markers are told apart); errors name the file.
pub fn parse_marker(bytes: &[u8], data_dir: &Path) -> Result<RaftFormat> {
    let loc = format_path(data_dir).display().to_string();
    let mut frames = journal_core::framing::FrameDecoder::new(bytes);
    let payload = match frames.next() {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(JournalError::corrupt(&loc, format!("format marker: {e}"))),
        None => return Err(JournalError::corrupt(&loc, "format marker is empty")),
    };
    if frames.position() != bytes.len() {
        return Err(JournalError::corrupt(
            &loc,
            format!(
                "format marker has {} bytes after its frame",
                bytes.len() - frames.position()
            ),
        ));
    }
    let marker = RaftFormat::decode(payload)
        .map_err(|e| JournalError::corrupt(&loc, format!("format marker does not decode: {e}")))?;
    if marker.magic != FORMAT_MAGIC {
        return Err(JournalError::ForeignJournal {
            location: data_dir.display().to_string(),
            detail: format!(
                "{loc} is not a primacy Raft journal marker (magic {:?})",
                marker.magic
            ),
        });
    }
    if marker.layout_version != LAYOUT_VERSION {
        return Err(JournalError::ForeignJournal {
            location: data_dir.display().to_string(),
            detail: format!(
                "{loc} has layout version {}, this primacy reads version {LAYOUT_VERSION}",
                marker.layout_version
            ),
        });
    }
    Ok(marker)
}

/// How a member enters its group; recorded in its `FORMAT` marker.
///
/// The principle: a member whose data was lost rejoins as a *new* member.
/// Emptiness never proves freshness (a wiped directory looks exactly like a
/// new one), so the mode says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatMode {
    /// An initial member of a brand-new group (the default). Its Raft id is
    /// derived from its address ([`crate::member_id_for`]) so every founder
    /// computes the same initial voter set; with no state it bootstraps only
    /// after the handshake (`bootstrap.rs`). Its address must be in
    /// `alluxio.master.embedded.journal.addresses`.
    #[default]
    NewCluster,
    /// A member replacing lost data, or one added to a running group. Its Raft
    /// id is fresh (derived from address and incarnation), so Raft sees a
    /// brand-new member: it never bootstraps, does not vote or answer for any
    /// quorum until an operator added it (`add_member`) and it received a
    /// snapshot listing its id. A replaced member's old id stays in the
    /// membership as a dead voter until `remove_member(old)`.
    Join,
}

impl FormatMode {
    /// The marker's code for this mode.
    pub fn code(self) -> u32 {
        match self {
            FormatMode::NewCluster => 0,
            FormatMode::Join => 1,
        }
    }

    /// The mode of a marker's code.
    pub fn from_code(code: u32) -> Option<FormatMode> {
        match code {
            0 => Some(FormatMode::NewCluster),
            1 => Some(FormatMode::Join),
            _ => None,
        }
    }
}

/// The Raft id of a JOIN member: FNV-1a of address and incarnation, never 0
/// and never the address's NEW_CLUSTER id.
pub fn join_member_id(address: &str, incarnation: u64) -> u64 {
    let text = format!("{}#join#{incarnation:016x}", address.trim());
    let mut id = crate::config::fnv1a(text.as_bytes()) >> 1;
    if id == 0 || id == crate::config::member_id_for(address) {
        id = (id ^ 0x5bd1_e995) | 2;
    }
    id
}

/// The mode recorded in `marker` (`ForeignJournal` for an unknown one).
pub fn marker_mode(marker: &RaftFormat, data_dir: &Path) -> Result<FormatMode> {
    FormatMode::from_code(marker.mode).ok_or_else(|| JournalError::ForeignJournal {
        location: data_dir.display().to_string(),
        detail: format!(
            "{} has format mode {}, which this primacy does not know",
            format_path(data_dir).display(),
            marker.mode
        ),
    })
}

/// The marker `cfg` would write in `mode`.
fn marker_for(cfg: &RaftJournalConfig, mode: FormatMode) -> Result<RaftFormat> {
    let in_list = cfg
        .initial_members()
        .iter()
        .any(|a| a == cfg.address.trim());
    let incarnation = rand::random::<u64>() | 1;
    let member_id = match mode {
        FormatMode::NewCluster => {
            if !in_list {
                return Err(JournalError::config(
                    KEY_ADDRESSES,
                    format!(
                        "does not list this master ({}); NEW_CLUSTER is only for the initial \
                         members of a brand-new group. A member added to a running group, or \
                         one replacing lost data, is formatted with JOIN",
                        cfg.address
                    ),
                ));
            }
            cfg.member_id()
        }
        FormatMode::Join => {
            if cfg.id.is_some() {
                return Err(JournalError::config(
                    KEY_MEMBER_ID,
                    "is set, but a JOIN member gets a fresh id derived from its address and \
                     format incarnation (reusing an id would let Raft take it for the member \
                     whose data was lost); leave it unset",
                ));
            }
            join_member_id(&cfg.address, incarnation)
        }
    };
    Ok(RaftFormat {
        magic: FORMAT_MAGIC.to_string(),
        layout_version: LAYOUT_VERSION,
        cluster_id: cfg.effective_cluster_id(),
        member_id,
        address: cfg.address.trim().to_string(),
        initial_members: cfg.initial_members(),
        membership: cfg.membership_fingerprint(),
        created_unix_ms: journal_core::snapshot::unix_ms(),
        mode: mode.code(),
        incarnation,
    })
}

/// True when `cfg` names the same group the way `marker` was formatted:
/// same initial list (and so the same derived cluster id).
pub fn list_matches(cfg: &RaftJournalConfig, marker: &RaftFormat) -> bool {
    marker.initial_members == cfg.initial_members()
        && marker.membership == cfg.membership_fingerprint()
        && marker.cluster_id == cfg.effective_cluster_id()
}

/// The checks that hold whatever state the member has: `ForeignJournal` for
/// another explicit cluster id or an unknown mode, `Config` naming the key
/// when the directory is another member's.
pub fn check_marker_identity(cfg: &RaftJournalConfig, marker: &RaftFormat) -> Result<()> {
    let dir = cfg.data_dir.display().to_string();
    marker_mode(marker, &cfg.data_dir)?;
    if let Some(explicit) = &cfg.cluster_id {
        if &marker.cluster_id != explicit {
            return Err(foreign_cluster(cfg, marker));
        }
    }
    let id_differs = cfg.id.is_some_and(|id| id != marker.member_id)
        || (marker.mode == FormatMode::NewCluster.code() && marker.member_id != cfg.member_id());
    if id_differs || marker.address != cfg.address.trim() {
        return Err(JournalError::config(
            KEY_HOSTNAME,
            format!(
                "this master is {} but {dir} was formatted for member {} (id {}); every master \
                 needs its own journal folder",
                cfg.address, marker.address, marker.member_id
            ),
        ));
    }
    Ok(())
}

pub(crate) fn foreign_cluster(cfg: &RaftJournalConfig, marker: &RaftFormat) -> JournalError {
    JournalError::ForeignJournal {
        location: cfg.data_dir.display().to_string(),
        detail: format!(
            "it was formatted for cluster {:?} (initial members {}), this master is configured \
             for cluster {:?} (initial members {}; {KEY_CLUSTER_ID} {})",
            marker.cluster_id,
            marker.initial_members.join(","),
            cfg.effective_cluster_id(),
            cfg.initial_members().join(","),
            if cfg.cluster_id.is_some() {
                "set"
            } else {
                "unset, so derived from them"
            }
        ),
    }
}

/// Checks that `marker` belongs to the member `cfg` describes, for a member
/// that holds **no Raft state** (it may bootstrap from the list, so the list
/// must be the one it was formatted with): [`check_marker_identity`], then
/// `ForeignJournal` for another derived cluster id and `Config` for another
/// initial list. A member with state uses its list only to contact peers,
/// so a grown group whose list was updated still opens (see `RaftJournal::open`).
pub fn check_marker(cfg: &RaftJournalConfig, marker: &RaftFormat) -> Result<()> {
    check_marker_identity(cfg, marker)?;
    if marker.cluster_id != cfg.effective_cluster_id() {
        return Err(foreign_cluster(cfg, marker));
    }
    if marker.mode == FormatMode::NewCluster.code()
        && (marker.initial_members != cfg.initial_members()
            || marker.membership != cfg.membership_fingerprint())
    {
        return Err(JournalError::config(
            KEY_ADDRESSES,
            format!(
                "lists {} but {dir} was formatted with the initial members {} and holds no Raft \
                 state yet: a member that may still bootstrap must keep the list it was \
                 formatted with",
                cfg.initial_members().join(","),
                marker.initial_members.join(","),
                dir = cfg.data_dir.display()
            ),
        ));
    }
    Ok(())
}

/// True when `data_dir` holds Raft log files or snapshot files (whatever
/// their content): data a marker-less directory must not be formatted over.
pub fn holds_journal_data(data_dir: &Path) -> bool {
    let has = |dir: PathBuf, pred: &dyn Fn(&str) -> bool| {
        std::fs::read_dir(dir)
            .map(|r| r.flatten().any(|e| pred(&e.file_name().to_string_lossy())))
            .unwrap_or(false)
    };
    has(crate::storage::log_dir(data_dir), &|n| {
        n.ends_with(".raftlog")
    }) || has(crate::storage::snapshot_dir(data_dir), &|n| {
        n.starts_with("snap-")
    })
}

/// The error for a directory that holds a journal log but lost its marker.
pub fn lost_marker(data_dir: &Path) -> JournalError {
    JournalError::corrupt(
        format_path(data_dir).display().to_string(),
        format!(
            "{} holds a primacy Raft journal's log but its {FORMAT_FILE} marker is missing (lost \
             or deleted). Do NOT wipe or re-format it: restore the marker from a backup, or \
             recreate it from the log with `RaftJournal::repair_marker` (primacy journal \
             repair-marker), then start the master again",
            data_dir.display()
        ),
    )
}

/// Writes `<data_dir>/FORMAT` for `cfg` into an empty (or absent) directory:
/// temp file, fsync, rename, directory fsync, under the directory lock.
///
/// Refuses `AlreadyFormatted` when a marker exists, `Corrupt` when a damaged
/// one does (it is left as is), `ForeignJournal` when the directory holds
/// anything else (a log, snapshots): formatting never adopts or destroys data.
pub fn write_marker(cfg: &RaftJournalConfig, mode: FormatMode) -> Result<()> {
    cfg.validate()?;
    let marker = marker_for(cfg, mode)?;
    let data_dir = &cfg.data_dir;
    let _lock = DirLock::acquire(data_dir)?;
    if let Some(existing) = read_marker(data_dir)? {
        return Err(JournalError::AlreadyFormatted {
            location: data_dir.display().to_string(),
            cluster_id: existing.cluster_id,
        });
    }
    let tmp = data_dir.join("FORMAT.tmp");
    let read = std::fs::read_dir(data_dir)
        .map_err(|e| JournalError::io(data_dir.display().to_string(), e))?;
    for entry in read {
        let entry = entry.map_err(|e| JournalError::io(data_dir.display().to_string(), e))?;
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == LOCK_FILE) || path == tmp {
            continue;
        }
        if holds_journal_data(data_dir) {
            return Err(lost_marker(data_dir));
        }
        return Err(JournalError::ForeignJournal {
            location: data_dir.display().to_string(),
            detail: format!(
                "the directory is not empty (it holds {}) but has no {FORMAT_FILE}; refusing to \
                 format over existing data",
                path.display()
            ),
        });
    }
    write_marker_file(data_dir, &marker)?;
    tracing::info!(
        dir = %data_dir.display(),
        cluster = %marker.cluster_id,
        member = marker.member_id,
        ?mode,
        "journal directory formatted"
    );
    Ok(())
}

/// Writes `marker` as `<data_dir>/FORMAT` (temp, fsync, rename, dir fsync);
/// the caller holds the directory lock.
pub(crate) fn write_marker_file(data_dir: &Path, marker: &RaftFormat) -> Result<()> {
    let tmp = data_dir.join("FORMAT.tmp");
    let mut framed = Vec::new();
    journal_core::framing::encode_message(marker, &mut framed)
        .map_err(|e| JournalError::io(tmp.display().to_string(), e.to_string()))?;
    let loc = tmp.display().to_string();
    let mut f = File::create(&tmp).map_err(|e| JournalError::io(&loc, e))?;
    f.write_all(&framed)
        .map_err(|e| JournalError::io(&loc, e))?;
    f.sync_all().map_err(|e| JournalError::io(&loc, e))?;
    drop(f);
    let path = format_path(data_dir);
    std::fs::rename(&tmp, &path).map_err(|e| JournalError::io(path.display().to_string(), e))?;
    crate::storage::sync_dir(data_dir)
        .map_err(|e| JournalError::io(data_dir.display().to_string(), e))?;
    Ok(())
}
