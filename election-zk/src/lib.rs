//! # election-zk
//!
//! ZooKeeper leader election for primacy (journal-core's `LeaderElection`)
//! and leader discovery for clients and workers, with Alluxio's keys:
//! `alluxio.zookeeper.address`, `.election.path`, `.leader.path`,
//! `.session.timeout`, `.connection.timeout` and
//! `.leader.connection.error.policy`. See `docs/zookeeper-election.md`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod config;
pub mod discovery;
pub mod election;
#[cfg(feature = "launcher")]
pub mod launcher;
mod session;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{ConnectionErrorPolicy, ZkConfig};
pub use discovery::{find_leader, list_contenders, LeaderDiscovery};
pub use election::ZkElection;
