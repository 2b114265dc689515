//! # journal-core
//!
//! The meeting point of primacy: the embedder's [`StateMachine`], the
//! backends' [`JournalSystem`] and [`LeaderElection`], the record framing
//! every byte on disk and on the wire uses, the wire types, the error family,
//! the metrics every backend updates (`metrics`), and (feature `testkit`)
//! the conformance suites: the one every backend
//! passes and the one for an embedder's own state machine.
//!
//! ## Getting started
//!
//! What you write is a deterministic [`StateMachine`]: entries in, state
//! and an output out, and a snapshot of the state that restores it. Check
//! the promises the journal relies on with `testkit::check_state_machine`
//! (feature `testkit`, for your tests):
//!
//! ```
//! use std::io::{Read, Write};
//!
//! use journal_core::{Bytes, StateMachine};
//!
//! /// Adds the numbers it is sent; answers the new total.
//! #[derive(Default)]
//! struct Counter {
//!     total: u64,
//! }
//!
//! impl StateMachine for Counter {
//!     fn apply(&mut self, _seq: u64, entry: &[u8]) -> Bytes {
//!         // Never panic on a bad entry: answer it. Every member sees it.
//!         match std::str::from_utf8(entry).ok().and_then(|s| s.parse::<u64>().ok()) {
//!             Some(n) => {
//!                 self.total = self.total.saturating_add(n);
//!                 Bytes::from(self.total.to_string())
//!             }
//!             None => Bytes::from_static(b"not a number"),
//!         }
//!     }
//!
//!     fn snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
//!         out.write_all(&self.total.to_le_bytes())
//!     }
//!
//!     fn restore(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
//!         let mut word = [0u8; 8];
//!         input.read_exact(&mut word)?;
//!         self.total = u64::from_le_bytes(word);
//!         Ok(())
//!     }
//! }
//!
//! // Deterministic apply, snapshot then restore, restore replaces, ...
//! let entries: Vec<Bytes> = vec!["5".into(), "7".into(), "seven".into(), "30".into()];
//! journal_core::testkit::check_state_machine(Counter::default, &entries).unwrap();
//! ```
//!
//! Then make it highly available with `master::embed` (the `master`
//! crate composes the backends): `Replicated::open(&config, Counter::default())`
//! opens the journal the configuration chooses (embedded Raft, UFS with
//! ZooKeeper, or a single UFS master), and `propose` / `read` serve on the
//! primary. That module's documentation runs one member end to end; the
//! `examples` crate runs three with a failover (`cargo run -p examples
//! --example embed_kv`), and `docs/embedding.md` explains the API.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod admission;
pub mod election;
pub mod error;
pub mod failpoint;
pub mod framing;
pub mod journal;
pub mod metrics;
pub mod net;
pub mod ports;
pub mod progress;
pub mod single_master;
pub mod snapshot;
pub mod state_machine;
#[cfg(feature = "testkit")]
pub mod testkit;

/// Wire types compiled from `proto/primacy/journal.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/primacy.journal.rs"));
}

/// The byte buffer entries and outputs travel in, re-exported so a state
/// machine can name it without depending on the `bytes` crate.
pub use admission::{PendingGate, PendingLimits, PendingPermit};
pub use bytes::Bytes;
pub use election::{Contender, ElectionState, LeaderElection};
pub use error::{JournalError, Result};
pub use journal::{
    wait_for_any_primary, wait_for_primary, JournalStatus, JournalSystem, MemberStatus, Proposal,
    Role,
};
pub use metrics::{Instrumented, JournalMetrics};
pub use single_master::SingleMaster;
pub use state_machine::{shared, FrozenState, Shared, SharedStateMachine, StateMachine};
