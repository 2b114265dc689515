//! # journal-ufs
//!
//! primacy's UFS journal: the log is a run of immutable chunk objects in a
//! shared folder (local disk or NFS with fsync, S3, GCS, Azure, or memory),
//! named by the sequence number of their first record and created with
//! create-if-absent. Two masters that both believe they are primary race for
//! the same name and exactly one wins, so the log never forks and a deposed
//! primary learns it at its next write. See `docs/ufs-journal.md`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod checkpoint;
pub mod chunk;
pub mod config;
mod driver;
pub mod format;
#[cfg(feature = "hdfs")]
mod hdfs;
pub mod inspect;
mod journal;
pub mod layout;
pub mod log_end;
pub mod probe;
#[cfg(feature = "aws")]
pub mod s3;
pub mod staging;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

/// Wire types of the UFS layout, compiled from `proto/primacy/ufs.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/primacy.ufs.rs"));
}

pub use config::UfsJournalConfig;
pub use format::format;
pub use journal::{UfsJournal, MAX_ENTRY_LEN};
pub use store::{open_folder, open_folder_with, Folder, Publish};
