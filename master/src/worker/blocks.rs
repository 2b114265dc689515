//! The worker's block directory (`alluxio.worker.data.folder`): one file per
//! block, named by the block id in canonical decimal (`0`, `42`,
//! `18446744073709551615`; no sign, no leading zeros, so one id has one
//! name). Everything else in the directory (other names, subdirectories) is
//! not a block: it is ignored, with one warning per name for the life of the
//! process, so an operator sees a stray file without a warning flood.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use super::WorkerError;

/// What the directory holds right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockReport {
    /// Every block id, ascending.
    pub block_ids: Vec<u64>,
    /// Sum of the block files' sizes, in bytes.
    pub used_bytes: u64,
}

/// A worker's block directory.
#[derive(Debug)]
pub struct BlockDir {
    path: PathBuf,
    warned: HashSet<OsString>,
}

/// The block id a file name stands for, if it is one (canonical decimal).
pub fn block_id(name: &str) -> Option<u64> {
    let canonical = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_digit())
        && (name == "0" || !name.starts_with('0'));
    if canonical {
        name.parse().ok()
    } else {
        None
    }
}

fn io_err(path: &Path, what: &str, source: io::Error) -> WorkerError {
    WorkerError::Io {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    }
}

impl BlockDir {
    /// Opens `path`, creating it (and its parents) when absent.
    pub fn open(path: &Path) -> Result<BlockDir, WorkerError> {
        std::fs::create_dir_all(path)
            .map_err(|e| io_err(path, "creating the block directory", e))?;
        Ok(BlockDir {
            path: path.to_path_buf(),
            warned: HashSet::new(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lists the blocks. A file that disappears while it is listed is
    /// skipped (a block being removed); an unreadable directory is an error.
    pub fn scan(&mut self) -> Result<BlockReport, WorkerError> {
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| io_err(&self.path, "listing the block directory", e))?;
        let mut report = BlockReport::default();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&self.path, "listing the block directory", e))?;
            let name = entry.file_name();
            let id = name.to_str().and_then(block_id);
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&entry.path(), "reading a block file's size", e)),
            };
            match id {
                Some(id) if meta.is_file() => {
                    report.block_ids.push(id);
                    report.used_bytes = report.used_bytes.saturating_add(meta.len());
                }
                _ => {
                    if self.warned.insert(name.clone()) {
                        tracing::warn!(
                            entry = %entry.path().display(),
                            "not a block file (blocks are regular files named by their id in decimal); ignored"
                        );
                    }
                }
            }
        }
        report.block_ids.sort_unstable();
        Ok(report)
    }

    /// The size of the file system holding the directory, in bytes.
    pub fn capacity(&self) -> Result<u64, WorkerError> {
        fs_capacity(&self.path).map_err(|e| io_err(&self.path, "reading the file system's size", e))
    }
}

fn fs_capacity(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated string that outlives the call and `st`
    // points to writable memory of the right type; statvfs writes it fully
    // when it returns 0, and only then is it read.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok((st.f_blocks as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_decimal_names_are_blocks() {
        assert_eq!(block_id("0"), Some(0));
        assert_eq!(block_id("42"), Some(42));
        assert_eq!(block_id("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "01",
            "+1",
            "-1",
            "1.tmp",
            "abc",
            "18446744073709551616",
            " 1",
        ] {
            assert_eq!(block_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scan_reports_blocks_and_sizes_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("7"), b"abc").unwrap();
        std::fs::write(dir.path().join("3"), b"hello").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("9")).unwrap();
        let mut blocks = BlockDir::open(dir.path()).unwrap();
        let r = blocks.scan().unwrap();
        assert_eq!(r.block_ids, vec![3, 7]);
        assert_eq!(r.used_bytes, 8);
        assert_eq!(blocks.warned.len(), 2);
        blocks.scan().unwrap();
        assert_eq!(blocks.warned.len(), 2);
        assert!(blocks.capacity().unwrap() > 0);
    }
}
