//! # journal-raft
//!
//! primacy's embedded journal: journal-core's [`JournalSystem`](journal_core::JournalSystem)
//! on tikv's `raft` (raft-rs 0.7, rust-protobuf codec), with the log, hard
//! state and conf state in `raft-engine`, snapshots as verified files beside
//! it, and peers talking tonic gRPC.
//!
//! - Durability: an acknowledged entry is committed by a quorum and fsynced
//!   on each member of it (raft-engine write with sync before the messages
//!   that depend on it leave).
//! - Leadership: pre-vote and check-quorum on; primary only after applying an
//!   entry of its own term; a leader cut off from its majority steps down.
//! - Reads: `read_barrier` is Raft's ReadIndex.
//! - Snapshots every `checkpoint_period_entries`, on demand, and streamed in
//!   chunks to members that fell behind the compacted log.
//! - Membership through ConfChangeV2 joint consensus; new members join as
//!   learners and are promoted once caught up.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod address;
pub mod auth;
mod bootstrap;
mod catch_up;
pub mod config;
pub mod format;
mod journal;
mod link_watch;
pub mod logging;
mod node;
pub mod storage;
mod transport;
pub mod validate;

pub use transport::{SILENT_PEER_LOG, STALLED_STREAM_LOG};

/// gRPC types compiled from `proto/raftpeer.proto`.
pub mod proto {
    tonic::include_proto!("primacy.raftpeer");
}

/// The format marker's type, compiled from `proto/format.proto`.
pub mod format_proto {
    tonic::include_proto!("primacy.raftformat");
}

pub use config::{member_id_for, RaftJournalConfig};
pub use format::FormatMode;
pub use journal::{RaftCounters, RaftJournal};
