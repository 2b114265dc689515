//! primacy's measuring and fault-finding tools: the benchmark harness that
//! runs the same work on every journal backend and on their peers (etcd,
//! ZooKeeper), and the fault campaigns that check every client history.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod harness;
pub mod peers;
pub mod report;
pub mod scenario;

pub mod chaos;
pub mod linearizability;
