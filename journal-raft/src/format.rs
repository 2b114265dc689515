//! Ownership of a journal data directory: the exclusive `LOCK` held for a
//! journal's whole life, and the `FORMAT` marker that says which group and
//! member the directory belongs to.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use journal_core::{JournalError, Result};
use prost::Message as _;

use crate::config::{RaftJournalConfig, KEY_ADDRESSES, KEY_CLUSTER_ID, KEY_HOSTNAME};
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
    let mut frames = journal_core::framing::FrameDecoder::new(&bytes);
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
    Ok(Some(marker))
}

/// The marker `cfg` would write.
fn marker_for(cfg: &RaftJournalConfig) -> RaftFormat {
    RaftFormat {
        magic: FORMAT_MAGIC.to_string(),
        layout_version: LAYOUT_VERSION,
        cluster_id: cfg.effective_cluster_id(),
        member_id: cfg.member_id(),
        address: cfg.address.trim().to_string(),
        initial_members: cfg.initial_members(),
        membership: cfg.membership_fingerprint(),
        created_unix_ms: journal_core::snapshot::unix_ms(),
    }
}

/// Checks that `marker` belongs to the member `cfg` describes:
/// `ForeignJournal` for another cluster id or membership, `Config` naming
/// the key when the directory is another member's or the configured
/// initial members differ from those it was formatted with.
pub fn check_marker(cfg: &RaftJournalConfig, marker: &RaftFormat) -> Result<()> {
    let dir = cfg.data_dir.display().to_string();
    let expected = cfg.effective_cluster_id();
    if marker.cluster_id != expected {
        return Err(JournalError::ForeignJournal {
            location: dir,
            detail: format!(
                "it was formatted for cluster {:?} (initial members {}), this master is configured \
                 for cluster {expected:?} (initial members {}; {KEY_CLUSTER_ID} {})",
                marker.cluster_id,
                marker.initial_members.join(","),
                cfg.initial_members().join(","),
                if cfg.cluster_id.is_some() { "set" } else { "unset, so derived from them" }
            ),
        });
    }
    if marker.initial_members != cfg.initial_members()
        || marker.membership != cfg.membership_fingerprint()
    {
        return Err(JournalError::config(
            KEY_ADDRESSES,
            format!(
                "lists {} but {dir} was formatted with the initial members {}; \
                 keep the list the group was formatted with",
                cfg.initial_members().join(","),
                marker.initial_members.join(",")
            ),
        ));
    }
    if marker.member_id != cfg.member_id() || marker.address != cfg.address.trim() {
        return Err(JournalError::config(
            KEY_HOSTNAME,
            format!(
                "this master is {} (id {}) but {dir} was formatted for member {} (id {}); \
                 every master needs its own journal folder",
                cfg.address,
                cfg.member_id(),
                marker.address,
                marker.member_id
            ),
        ));
    }
    Ok(())
}

/// Writes `<data_dir>/FORMAT` for `cfg` into an empty (or absent) directory:
/// temp file, fsync, rename, directory fsync, under the directory lock.
///
/// Refuses `AlreadyFormatted` when a marker exists, `Corrupt` when a damaged
/// one does (it is left as is), `ForeignJournal` when the directory holds
/// anything else (a log, snapshots): formatting never adopts or destroys data.
pub fn write_marker(cfg: &RaftJournalConfig) -> Result<()> {
    cfg.validate()?;
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
        return Err(JournalError::ForeignJournal {
            location: data_dir.display().to_string(),
            detail: format!(
                "the directory is not empty (it holds {}) but has no {FORMAT_FILE}; refusing to \
                 format over existing data",
                path.display()
            ),
        });
    }
    let mut framed = Vec::new();
    journal_core::framing::encode_message(&marker_for(cfg), &mut framed)
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
    tracing::info!(
        dir = %data_dir.display(),
        cluster = %cfg.effective_cluster_id(),
        member = cfg.member_id(),
        "journal directory formatted"
    );
    Ok(())
}
