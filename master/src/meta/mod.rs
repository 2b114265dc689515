//! The metadata state machine of the master (docs/metadata.md).
//!
//! - Tables (inode, edge, block) behind [`MetaStore`] / [`StoreView`]; the
//!   in-memory [`MemStore`] uses persistent B-trees so [`MetaMachine`]'s
//!   `freeze` is O(1).
//! - Operations (mkdir, create file, complete file, delete, rename) arrive as
//!   journal entries built with [`Entry`]'s constructors and
//!   [`encode_entry`]; apply answers with an encoded [`FsResult`]
//!   ([`decode_result`]).
//! - Queries ([`MetaMachine::get_status`], [`MetaMachine::list_status`]) read
//!   the applied state and are not journaled.
//! - Exactly-once: the last (request seq, result) per client ([`Sessions`]).
//! - Paths are validated by [`FsPath::parse`], before proposing and in apply.
//!
//! See `docs/metadata.md` for the rules and the measured memory per inode.

mod entry;
mod error;
mod machine;
mod mem_store;
mod ops;
mod path;
mod query;
mod restore;
mod sessions;
mod snapshot;
mod store;

#[cfg(test)]
mod tests;

/// Wire types compiled from `proto/primacy/meta.proto`.
pub mod proto {
    pub use crate::proto::meta::*;
}

pub use entry::{decode_result, encode_entry};
pub use error::MetaError;
pub use machine::{FrozenMeta, MetaConfig, MetaMachine};
pub use mem_store::MemStore;
pub use ops::MAX_BLOCKS_PER_FILE;
pub use path::{
    validate_component, FsPath, PathError, Shown, MAX_COMPONENT_BYTES, MAX_DEPTH, MAX_PATH_BYTES,
};
pub use proto::{entry::Op, Entry, ErrorCode, FileInfo, FsResult};
pub use sessions::{
    Session, Sessions, Verdict, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_RETENTION_MS,
    MAX_CLIENT_ID_BYTES,
};
pub use snapshot::{SnapshotError, FLUSH_BYTES, FORMAT_VERSION};
pub use store::{
    Block, Inode, InodeId, InodeKind, MetaStore, SortedRows, StoreIter, StoreView, TableCounts,
    ROOT_ID,
};
