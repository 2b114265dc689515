//! The sequential model of the part of the namespace a fault campaign
//! touches: a few file paths in one directory, each absent or holding a
//! file with an inode id. Renames carry the id along, so a stat that sees
//! the wrong file (or a file that should be gone) is caught, not only one
//! that sees the wrong existence.

use super::Model;

/// An index into the campaign's path list.
pub type PathIx = u8;

/// An id standing for "a file whose id no client saw" (a create whose
/// answer was lost): matches any observed id.
pub const UNSEEN_ID: u64 = u64::MAX;

/// A file system call of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsInput {
    /// Create an empty file.
    Create(PathIx),
    /// Delete a file.
    Delete(PathIx),
    /// Rename the first path to the second (distinct paths).
    Rename(PathIx, PathIx),
    /// Stat a path.
    Stat(PathIx),
}

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsOutput {
    /// Success returning the inode id (create, rename, stat).
    Ok(u64),
    /// Delete succeeded.
    Deleted,
    /// Refused: the path (rename: the source) does not exist.
    NotFound,
    /// Refused: the path (rename: the destination) exists.
    Exists,
}

/// Which of `paths` files exist, with their inode ids.
#[derive(Debug, Clone, Copy)]
pub struct Namespace {
    /// How many paths the workload uses (at most 16).
    pub paths: usize,
}

/// The model state: slot `i` is path `i`'s file id, if it exists.
pub type NsState = Vec<Option<u64>>;

fn same_id(model: u64, seen: u64) -> bool {
    model == UNSEEN_ID || model == seen
}

impl Model for Namespace {
    type State = NsState;
    type Input = NsInput;
    type Output = NsOutput;

    fn init(&self) -> NsState {
        vec![None; self.paths]
    }

    fn step(&self, s: &NsState, input: &NsInput, out: Option<&NsOutput>) -> Option<NsState> {
        let slot = |p: PathIx| s.get(usize::from(p)).copied();
        match *input {
            NsInput::Stat(p) => match (slot(p)?, out) {
                (_, None) => Some(s.clone()),
                (None, Some(NsOutput::NotFound)) => Some(s.clone()),
                (Some(id), Some(NsOutput::Ok(seen))) if same_id(id, *seen) => {
                    // A stat names the id of a file created by a lost answer.
                    let mut t = s.clone();
                    t[usize::from(p)] = Some(*seen);
                    Some(t)
                }
                _ => None,
            },
            NsInput::Create(p) => match (slot(p)?, out) {
                (Some(_), None | Some(NsOutput::Exists)) => Some(s.clone()),
                (None, None) => {
                    let mut t = s.clone();
                    t[usize::from(p)] = Some(UNSEEN_ID);
                    Some(t)
                }
                (None, Some(NsOutput::Ok(id))) => {
                    let mut t = s.clone();
                    t[usize::from(p)] = Some(*id);
                    Some(t)
                }
                _ => None,
            },
            NsInput::Delete(p) => match (slot(p)?, out) {
                (None, None | Some(NsOutput::NotFound)) => Some(s.clone()),
                (Some(_), None | Some(NsOutput::Deleted)) => {
                    let mut t = s.clone();
                    t[usize::from(p)] = None;
                    Some(t)
                }
                _ => None,
            },
            NsInput::Rename(a, b) => match (slot(a)?, slot(b)?, out) {
                (None, _, None | Some(NsOutput::NotFound)) => Some(s.clone()),
                (Some(_), Some(_), None | Some(NsOutput::Exists)) => Some(s.clone()),
                (Some(id), None, None) => {
                    let mut t = s.clone();
                    t[usize::from(a)] = None;
                    t[usize::from(b)] = Some(id);
                    Some(t)
                }
                (Some(id), None, Some(NsOutput::Ok(seen))) if same_id(id, *seen) => {
                    let mut t = s.clone();
                    t[usize::from(a)] = None;
                    t[usize::from(b)] = Some(*seen);
                    Some(t)
                }
                _ => None,
            },
        }
    }
}
