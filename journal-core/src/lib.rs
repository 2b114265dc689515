//! # journal-core
//!
//! The meeting point of primacy: the embedder's [`StateMachine`], the
//! backends' [`JournalSystem`] and [`LeaderElection`], the record framing
//! every byte on disk and on the wire uses, the wire types, the error family,
//! the metrics every backend updates (`metrics`),
//! and (feature `testkit`) the conformance suite every backend passes.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod election;
pub mod error;
pub mod framing;
pub mod journal;
pub mod metrics;
pub mod progress;
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

pub use election::{Contender, ElectionState, LeaderElection};
pub use error::{JournalError, Result};
pub use journal::{wait_for_primary, JournalStatus, JournalSystem, MemberStatus, Proposal, Role};
pub use metrics::{Instrumented, JournalMetrics};
pub use single_master::SingleMaster;
pub use state_machine::{shared, FrozenState, SharedStateMachine, StateMachine};
