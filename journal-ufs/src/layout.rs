//! Object names of the UFS journal layout.
//!
//! ```text
//! <folder>/FORMAT                   cluster id and layout version
//! <folder>/logs/<first-seq:016x>    one immutable chunk of records
//! <folder>/checkpoints/<seq:016x>   state before record `seq`
//! <folder>/tmp/<uuid>               checkpoints being written
//! ```
//! Fixed-width hex keeps lexical order equal to numeric order in listings.

use object_store::path::Path;

/// Layout version written into FORMAT; a different one is refused.
pub const LAYOUT_VERSION: u32 = 1;

/// Magic string in FORMAT.
pub const FORMAT_MAGIC: &str = "primacy-ufs-journal";

/// Names inside one journal folder.
#[derive(Debug, Clone)]
pub struct Layout {
    root: Path,
    display: String,
}

impl Layout {
    /// The layout under `root` (a path inside the store); `display` is the
    /// folder URL used in messages.
    pub fn new(root: Path, display: String) -> Self {
        Layout { root, display }
    }

    /// The folder URL, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    fn child(&self, parts: &[&str]) -> Path {
        let mut p = self.root.clone();
        for part in parts {
            p = p.join(*part);
        }
        p
    }

    /// `<folder>/FORMAT`.
    pub fn format(&self) -> Path {
        self.child(&["FORMAT"])
    }

    /// `<folder>/logs`.
    pub fn logs(&self) -> Path {
        self.child(&["logs"])
    }

    /// `<folder>/checkpoints`.
    pub fn checkpoints(&self) -> Path {
        self.child(&["checkpoints"])
    }

    /// The chunk whose first record is `first_seq`.
    pub fn chunk(&self, first_seq: u64) -> Path {
        self.child(&["logs", &seq_name(first_seq)])
    }

    /// The checkpoint of the state before `seq`.
    pub fn checkpoint(&self, seq: u64) -> Path {
        self.child(&["checkpoints", &seq_name(seq)])
    }

    /// A fresh temporary name for a checkpoint being written.
    pub fn temp(&self) -> Path {
        self.child(&["tmp", &uuid::Uuid::new_v4().to_string()])
    }

    /// `<folder>/tmp`.
    pub fn temp_dir(&self) -> Path {
        self.child(&["tmp"])
    }

    /// Human-readable name of an object: folder URL + relative path.
    pub fn describe(&self, path: &Path) -> String {
        let rel = path
            .as_ref()
            .strip_prefix(self.root.as_ref())
            .unwrap_or(path.as_ref())
            .trim_start_matches('/');
        format!("{}/{}", self.display.trim_end_matches('/'), rel)
    }
}

/// Fixed-width hex name of a sequence number.
pub fn seq_name(seq: u64) -> String {
    format!("{seq:016x}")
}

/// Parses the sequence number from the last segment of a chunk or
/// checkpoint name; `None` for anything else. Only the canonical form
/// ([`seq_name`]: 16 lowercase hex digits) parses, so a name can never alias
/// another object (`+000000000000001` or upper case would).
pub fn parse_seq(path: &Path) -> Option<u64> {
    let name = path.filename()?;
    if name.len() != 16 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(name, 16).ok()
}

/// Whether `path` names an object store client's staging file for a
/// journal object, `.<16 hex>.tmp.<n>` (the HDFS client writes these next
/// to the target and renames them onto it). Such a name can never parse as
/// a sequence number, so skipping it in listings hides nothing of the log;
/// one left by a crashed writer stays until removed by hand. Listings skip
/// them only where the client makes them ([`crate::Folder::client_staging`]).
pub fn is_client_staging(path: &Path) -> bool {
    let Some(name) = path.filename() else {
        return false;
    };
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((seq, n)) = rest.split_once(".tmp.") else {
        return false;
    };
    parse_seq(&Path::from(seq)).is_some() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_numerically() {
        let l = Layout::new(Path::from("j"), "memory://x/j".into());
        assert_eq!(l.chunk(255).as_ref(), "j/logs/00000000000000ff");
        assert_eq!(parse_seq(&l.chunk(255)), Some(255));
        assert_eq!(parse_seq(&l.checkpoint(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_seq(&Path::from("j/logs/00000000000000ff#1")), None);
        assert_eq!(parse_seq(&Path::from("j/logs/+0000000000000ff")), None);
        assert_eq!(parse_seq(&Path::from("j/logs/00000000000000FF")), None);
        assert_eq!(parse_seq(&Path::from("j/logs/0ff")), None);
        assert!(seq_name(9) < seq_name(10));
        assert!(is_client_staging(&Path::from(
            "j/logs/.00000000000000ff.tmp.1"
        )));
        assert!(!is_client_staging(&Path::from(
            "j/logs/.00000000000000ff.tmp."
        )));
        assert!(!is_client_staging(&Path::from(
            "j/logs/.00000000000000FF.tmp.1"
        )));
        assert!(!is_client_staging(&Path::from("j/logs/00000000000000ff")));
        assert_eq!(
            l.describe(&l.chunk(1)),
            "memory://x/j/logs/0000000000000001"
        );
    }
}
