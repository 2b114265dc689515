//! The target bodies, one decoder (family) per module.

pub mod frame;
pub mod meta_apply;
pub mod meta_restore;
pub mod properties;
pub mod raft_format;
pub mod raft_peer;
pub mod raft_storage;
pub mod rpc_request;
pub mod snapshot_stream;
pub mod ufs_chunk;
pub mod ufs_format;
