//! Staging files: what a write killed mid-way leaves in a local folder.
//!
//! `object_store`'s local file system writes every object to
//! `<name>#<digits>` first and links or renames it into place once it is
//! complete and synced. A process killed between the two leaves the staging
//! file behind. The store's own listings skip such names and no journal name
//! contains `#`, so they are never read as chunks or checkpoints; they only
//! take space. The primary deletes the ones older than a grace period (a
//! younger one may belong to a write still under way on another master),
//! and only the journal's own (see [`sweep`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// True for a staging file name: a non-empty name, `#`, and only digits
/// after it (the form the local store writes; it lists nothing of this
/// form, and no journal object is named so).
pub fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((base, digits)) => {
            !base.is_empty() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The local directory behind a `file://` folder URL (or a bare absolute
/// path); `None` for every other store, which writes no staging files.
pub fn local_dir(url: &str) -> Option<PathBuf> {
    let trimmed = url.trim();
    if trimmed.starts_with('/') {
        return Some(PathBuf::from(trimmed));
    }
    let parsed = url::Url::parse(trimmed).ok()?;
    if parsed.scheme() != "file" {
        return None;
    }
    parsed.to_file_path().ok()
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Staging files deleted (older than the grace period).
    pub removed: Vec<PathBuf>,
    /// Staging files kept because they are younger than the grace period.
    pub kept: usize,
    /// Files or directories that could not be read or deleted.
    pub errors: usize,
}

/// The journal's own directories below its folder (see `layout`): the
/// only places a staging file of this journal can be.
const JOURNAL_DIRS: [&str; 3] = ["logs", "checkpoints", "tmp"];

/// Whether `base` (the name before `#`) is one this journal writes in the
/// directory at `dirs[index]`: FORMAT in the folder itself, a sequence name
/// (16 hex digits) in `logs` and `checkpoints`, anything in `tmp`. A staging
/// name next to anything else is not this journal's write and is kept.
fn journal_base(index: usize, base: &str) -> bool {
    match index {
        0 => base == "FORMAT",
        1 | 2 => seq_of(base).is_some(),
        _ => true,
    }
}

/// The sequence number a canonical chunk or checkpoint name (16 lowercase
/// hex digits, as `layout::seq_name` writes) stands for.
fn seq_of(base: &str) -> Option<u64> {
    let canonical =
        base.len() == 16 && base.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical
        .then(|| u64::from_str_radix(base, 16).ok())
        .flatten()
}

/// Deletes the staging files whose last modification is more than `grace`
/// ago, in `dir` itself and in the journal's own subdirectories (`logs`,
/// `checkpoints`, `tmp`) only: any other directory under the folder (an
/// operator's backup, another journal nested inside) is not the journal's
/// and is never entered. Nothing but staging names is ever touched.
///
/// A chunk's staging file is deleted only when its slot lies below
/// `log_end` (the sweeping primary's next slot), whatever its age. A write
/// stalled longer than the grace period (a hung mount, a paused VM) may
/// still hold a staging file at the end of the log; deleting it would free
/// its name for the next writer of the same slot, and the stalled writer,
/// resuming, would link that writer's (possibly half-written) file as its
/// own chunk. Below the end every slot is taken, so a stalled writer can
/// only fail there. Blocking: run it on a blocking thread.
pub fn sweep(dir: &Path, grace: Duration, log_end: u64) -> Sweep {
    let mut out = Sweep::default();
    let now = SystemTime::now();
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(JOURNAL_DIRS.iter().map(|d| dir.join(d)));
    for (i, current) in dirs.iter().enumerate() {
        let entries = match std::fs::read_dir(current) {
            Ok(e) => e,
            // A subdirectory the journal has not created yet is no error.
            Err(e) if i > 0 && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::debug!(dir = %current.display(), error = %e, "cannot list for staging files");
                out.errors += 1;
                if i == 0 {
                    break;
                }
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // `symlink_metadata`: a link is judged as itself, never followed
            // out of the journal folder.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                out.errors += 1;
                continue;
            };
            let is_staging = path
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| is_staging_name(n))
                .and_then(|n| n.rsplit_once('#'))
                .filter(|(base, _)| journal_base(i, base))
                .map(|(base, _)| base);
            let Some(base) = is_staging.filter(|_| meta.is_file()) else {
                continue;
            };
            if i == 1 && seq_of(base).is_none_or(|slot| slot >= log_end) {
                out.kept += 1;
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or(Duration::ZERO);
            if age < grace {
                out.kept += 1;
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => out.removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete a stale staging file");
                    out.errors += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_base_hash_digits_only() {
        assert!(is_staging_name("0000000000000001#1"));
        assert!(is_staging_name("FORMAT#12"));
        assert!(!is_staging_name("0000000000000001"));
        assert!(!is_staging_name("#1"));
        assert!(!is_staging_name("a#"));
        assert!(!is_staging_name("a#1x"));
        assert!(!is_staging_name("a#-1"));
    }

    #[test]
    fn a_staging_named_link_is_neither_followed_nor_its_target_deleted() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious#1");
        std::fs::write(&target, b"not the journal's").unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("logs")).unwrap();
        let link = folder.path().join("logs").join("0000000000000001#1");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::os::unix::fs::symlink(outside.path(), folder.path().join("away")).unwrap();
        let swept = sweep(folder.path(), Duration::ZERO, u64::MAX);
        assert!(swept.removed.is_empty(), "{swept:?}");
        assert!(target.exists());
        assert!(link.symlink_metadata().is_ok());
    }

    /// The sweep used to walk every directory under the folder and delete
    /// any old `<anything>#<digits>` file in it.
    #[test]
    fn only_the_journals_own_staging_names_in_its_own_directories_go() {
        let folder = tempfile::tempdir().unwrap();
        let root = folder.path();
        let ours = [
            root.join("FORMAT#1"),
            root.join("logs").join("0000000000000001#1"),
            root.join("checkpoints").join("00000000000000af#2"),
            root.join("tmp").join("anything#3"),
        ];
        let theirs = [
            root.join("backup.tar#1"),
            root.join("logs").join("notes#1"),
            root.join("logs").join("000000000000001#1"),
            root.join("checkpoints").join("00000000000000AF#1"),
            root.join("other").join("FORMAT#1"),
            root.join("nested").join("logs").join("0000000000000001#1"),
            root.join("logs").join("sub").join("0000000000000001#1"),
        ];
        for p in ours.iter().chain(theirs.iter()) {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let swept = sweep(root, Duration::ZERO, u64::MAX);
        assert_eq!(swept.removed.len(), ours.len(), "{swept:?}");
        assert_eq!(swept.errors, 0, "{swept:?}");
        for p in &ours {
            assert!(!p.exists(), "{}", p.display());
        }
        for p in &theirs {
            assert!(p.exists(), "{} is not the journal's", p.display());
        }
    }

    /// The sweep used to delete any old chunk staging file, also one at the
    /// end of the log that a stalled writer still holds.
    #[test]
    fn chunk_staging_files_at_or_beyond_the_log_end_are_kept_however_old() {
        let folder = tempfile::tempdir().unwrap();
        let logs = folder.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let below = logs.join("0000000000000009#1");
        let at = logs.join("000000000000000a#1");
        let beyond = logs.join("00000000000000ff#3");
        for p in [&below, &at, &beyond] {
            std::fs::write(p, b"x").unwrap();
        }
        let swept = sweep(folder.path(), Duration::ZERO, 10);
        assert_eq!(swept.removed, vec![below.clone()]);
        assert_eq!(swept.kept, 2);
        assert!(at.exists() && beyond.exists());
    }

    #[test]
    fn a_missing_folder_is_an_error_count_not_a_panic() {
        let swept = sweep(
            Path::new("/nonexistent/primacy/journal"),
            Duration::ZERO,
            u64::MAX,
        );
        assert_eq!(swept.errors, 1);
        assert!(swept.removed.is_empty());
    }

    #[test]
    fn only_file_urls_have_a_local_dir() {
        assert_eq!(local_dir("file:///tmp/j"), Some(PathBuf::from("/tmp/j")));
        assert_eq!(local_dir("/tmp/j"), Some(PathBuf::from("/tmp/j")));
        assert_eq!(local_dir("memory://x"), None);
        assert_eq!(local_dir("s3://b/p"), None);
    }
}
