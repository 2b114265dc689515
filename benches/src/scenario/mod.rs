//! The scenarios of the harness, each run on every backend (and, where
//! it applies, on every installed peer) in one run.

pub mod append;
pub mod failover;
pub mod masters;
pub mod metadata;
pub mod state;
