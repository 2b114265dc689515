//! Snapshot files beside the log: verifying one end to end, checking that it
//! belongs to this cluster and Raft snapshot, and moving a damaged one aside.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use journal_core::{JournalError, Result};

/// The snapshot directory inside a data dir.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// The file name of the snapshot at `index`/`term`.
pub fn snapshot_file(dir: &Path, index: u64, term: u64) -> PathBuf {
    dir.join(format!("snap-{index:016x}-{term:016x}"))
}

/// A state machine that only reads a snapshot to its end, to verify a
/// received file's frames and trailer without touching the real state.
struct Discard;

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
