#![allow(dead_code)]
//! Shared helpers for the ZooKeeper tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use election_zk::testkit::expire_session;

use election_zk::ZkElection;
use journal_core::{ElectionState, LeaderElection};

pub const SESSION: Duration = Duration::from_millis(2000);

pub use journal_core::testkit::init_tracing;

pub use election_zk::testkit::test_config as zk_config;

/// Waits until `cond` holds for the election states; panics after `timeout`.
pub async fn wait_states(
    what: &str,
    elections: &[Arc<ZkElection>],
    timeout: Duration,
    cond: impl Fn(&[ElectionState]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let states: Vec<ElectionState> = elections
            .iter()
            .map(|e| e.watch().borrow().clone())
            .collect();
        if cond(&states) {
            return started.elapsed();
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}; states: {states:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn leaders(states: &[ElectionState]) -> Vec<usize> {
    states
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, ElectionState::Leader { .. }))
        .map(|(i, _)| i)
        .collect()
}
