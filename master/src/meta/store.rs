//! The tables behind a narrow interface, so a disk-backed metastore (as
//! Alluxio's RocksDB one) can replace the in-memory [`MemStore`] without
//! touching the operations, the sessions or the snapshot code.
//!
//! Three tables, as Alluxio's master keeps them:
//! - inode table: id → [`Inode`];
//! - edge table: (parent id, child name) → child id, iterable per parent in
//!   name order (bytewise UTF-8, i.e. `str`'s `Ord`);
//! - block table: file id → its blocks ([`Block`]: id + length).
//!
//! Reads return owned or [`Cow`] values so a store that decodes from disk
//! need not keep anything borrowed; the in-memory one lends.
//!
//! [`MemStore`]: super::mem_store::MemStore

use std::borrow::Cow;

/// An inode id. Ids are never reused; the root is [`ROOT_ID`].
pub type InodeId = u64;

/// The root directory's id, present in every state.
pub const ROOT_ID: InodeId = 1;

/// One inode, without its name and parent (those are the edge table's key,
/// so a rename touches no inode and a name is stored once).
///
/// Kept to 32 bytes: the goal is ≤ 400 B of memory per inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inode {
    /// Milliseconds since the Unix epoch, from the creating entry.
    pub created_ms: u64,
    /// Milliseconds since the Unix epoch, from the last entry that changed it
    /// (for a directory: a child added, removed or renamed in or out).
    pub modified_ms: u64,
    /// A file's length (sum of its block lengths once complete), or a
    /// directory's number of direct children.
    pub size: u64,
    /// Directory or file.
    pub kind: InodeKind,
}

/// What an inode is. A small enum (one byte) rather than flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InodeKind {
    /// A directory.
    Directory,
    /// A file still being written (created, not completed).
    OpenFile,
    /// A completed (sealed) file.
    CompleteFile,
}

impl Inode {
    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.kind == InodeKind::Directory
    }

    /// A new empty directory stamped `ms`.
    pub fn directory(ms: u64) -> Self {
        Inode {
            created_ms: ms,
            modified_ms: ms,
            size: 0,
            kind: InodeKind::Directory,
        }
    }

    /// A new empty, incomplete file stamped `ms`.
    pub fn file(ms: u64) -> Self {
        Inode {
            created_ms: ms,
            modified_ms: ms,
            size: 0,
            kind: InodeKind::OpenFile,
        }
    }
}

/// One block of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The block's id (chosen by the client or worker layer).
    pub id: u64,
    /// Bytes in the block.
    pub length: u64,
}

/// A boxed iterator a store hands out (boxed so the trait stays object-safe
/// enough for a disk store with its own iterator types).
pub type StoreIter<'a, T> = Box<dyn Iterator<Item = T> + 'a>;

/// Read access to the three tables. Implemented by a live store and by its
/// frozen copy, so queries and the snapshot writer run on either.
pub trait StoreView: Send + Sync {
    /// The inode `id`, if present.
    fn inode(&self, id: InodeId) -> Option<Inode>;
    /// The child of `parent` named `name`, if present.
    fn child(&self, parent: InodeId, name: &str) -> Option<InodeId>;
    /// The children of `parent` in name order (bytewise).
    fn children(&self, parent: InodeId) -> StoreIter<'_, (Cow<'_, str>, InodeId)>;
    /// The blocks of file `file`, if any were recorded.
    fn blocks(&self, file: InodeId) -> Option<Cow<'_, [Block]>>;
    /// Every inode in ascending id order (for snapshots and dumps).
    fn inodes(&self) -> StoreIter<'_, (InodeId, Inode)>;
    /// Every edge as (parent, name, child), ascending by (parent, name).
    fn edges(&self) -> StoreIter<'_, (InodeId, Cow<'_, str>, InodeId)>;
    /// Every block-table row, ascending by file id.
    fn block_files(&self) -> StoreIter<'_, (InodeId, Cow<'_, [Block]>)>;
    /// Rows in the inode, edge and block tables.
    fn counts(&self) -> TableCounts;
}

/// Rows per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableCounts {
    /// Inode table rows.
    pub inodes: u64,
    /// Edge table rows.
    pub edges: u64,
    /// Block table rows (files with blocks).
    pub block_files: u64,
}

/// Whole tables handed to [`MetaStore::load_sorted`] by restore, which
/// verified them first: each table's rows strictly ascending by key (so no
/// key twice) and every cross-table invariant of a snapshot holds.
#[derive(Debug, Default)]
pub struct SortedRows {
    /// Inode table rows, ascending by id.
    pub inodes: Vec<(InodeId, Inode)>,
    /// Edge table rows (parent, name, child), ascending by (parent, name).
    pub edges: Vec<(InodeId, String, InodeId)>,
    /// Block table rows, ascending by file id, none empty.
    pub blocks: Vec<(InodeId, Box<[Block]>)>,
}

/// A store the state machine can change.
///
/// Writes are infallible: the operations validate everything first and then
/// write, so an operation either changes nothing or completes. A disk-backed
/// store would gather one apply's writes into a batch and commit it after the
/// apply; an I/O failure there must stop the master (a replica that silently
/// skipped a write would diverge from the others).
pub trait MetaStore: StoreView + Sized + Send + Sync + 'static {
    /// An immutable copy of the tables at one moment (see [`MetaStore::freeze`]).
    type Frozen: StoreView + 'static;

    /// A new, empty store of the same kind and configuration (restore fills
    /// one and swaps it in only once the whole snapshot verified).
    fn empty(&self) -> Self;
    /// Inserts or replaces inode `id`.
    fn put_inode(&mut self, id: InodeId, inode: Inode);
    /// Removes inode `id`.
    fn delete_inode(&mut self, id: InodeId);
    /// Inserts or replaces the edge (`parent`, `name`) → `child`.
    fn put_child(&mut self, parent: InodeId, name: &str, child: InodeId);
    /// Removes the edge (`parent`, `name`).
    fn delete_child(&mut self, parent: InodeId, name: &str);
    /// Sets the blocks of `file` (an empty list removes the row).
    fn put_blocks(&mut self, file: InodeId, blocks: &[Block]);
    /// Removes the blocks of `file`.
    fn delete_blocks(&mut self, file: InodeId);
    /// Adds every row of `rows` to this (empty) store, as the matching
    /// `put_*` calls would. Restore calls it once, after verifying `rows`,
    /// so a store may build its tables in bulk from the sorted rows; the
    /// default makes one `put` per row.
    fn load_sorted(&mut self, rows: SortedRows) {
        for (id, inode) in rows.inodes {
            self.put_inode(id, inode);
        }
        for (parent, name, child) in rows.edges {
            self.put_child(parent, &name, child);
        }
        for (file, blocks) in rows.blocks {
            self.put_blocks(file, &blocks);
        }
    }
    /// Captures the tables as they are now. Must be cheap (O(1) or close):
    /// it is called between two applies, and the copy is written out on
    /// another thread while apply goes on.
    fn freeze(&self) -> Self::Frozen;
}
