//! # journal-core
//!
//! The meeting point of primacy: the embedder's [`StateMachine`], the
//! backends' [`JournalSystem`] and [`LeaderElection`], the record framing
//! every byte on disk and on the wire uses, the wire types, the error family,
//! and (feature `testkit`) the conformance suite every backend passes.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod election;
pub mod error;
pub mod framing;
pub mod journal;
pub mod single_master;
pub mod snapshot;
pub mod state_machine;
#[cfg(feature = "testkit")]
pub mod testkit;

/// Wire types compiled from `proto/primacy/journal.proto`.
#[allow(missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/primacy.journal.rs"));
}

/// The byte buffer entries and outputs travel in, re-exported so a state
/// machine can name it without depending on the `bytes` crate.
pub use bytes::Bytes;
pub use election::{ElectionState, LeaderElection};
pub use error::{JournalError, Result};
pub use journal::{
    wait_for_any_primary, wait_for_primary, JournalStatus, JournalSystem, MemberStatus, Proposal,
    Role,
};
pub use single_master::SingleMaster;
pub use state_machine::{shared, FrozenState, Shared, SharedStateMachine, StateMachine};
