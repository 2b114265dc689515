//! # master
//!
//! primacy's master service. Today it holds the configuration layer
//! (`config`), the composition of journals and elections (`ha`) and the one
//! call that opens whichever journal the configuration chooses (`backend`);
//! the metadata state machine, RPC, CLI and status page arrive with their
//! issues.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod backend;
pub mod config;
pub mod ha;
pub mod meta;
