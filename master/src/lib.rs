//! # master
//!
//! primacy's master service. Today it holds the composition of journals and
//! elections (`ha`); the metadata state machine, RPC, CLI and status page
//! arrive with their issues.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod ha;
pub mod meta;
