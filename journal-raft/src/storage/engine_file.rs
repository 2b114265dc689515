//! raft-engine's files: where they live, how the engine is configured, and
//! the repair of the one damage a crash leaves (a torn or zero-padded tail of
//! the newest log file) when the engine refuses to open.

use std::path::{Path, PathBuf};

use journal_core::{JournalError, Result};
use raft_engine::{Engine, RecoveryMode};

pub(crate) fn engine_err(location: &str, e: raft_engine::Error) -> JournalError {
    match e {
        raft_engine::Error::Io(io) => JournalError::io(location, io),
        other => JournalError::corrupt(location, other.to_string()),
    }
}

/// The raft-engine log directory inside a data dir.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
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

#[cfg(test)]
mod tests {
    use super::*;

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
