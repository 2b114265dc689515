//! Ownership of a journal data directory: the exclusive `LOCK` held for a
//! journal's whole life.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use journal_core::{JournalError, Result};

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
