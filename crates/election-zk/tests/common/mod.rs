#![allow(dead_code)]
//! Shared helpers for the ZooKeeper tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use election_zk::testkit::expire_session;

use election_zk::{ConnectionErrorPolicy, ZkConfig, ZkElection};
use journal_core::{ElectionState, LeaderElection};

pub const SESSION: Duration = Duration::from_millis(2000);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

pub fn zk_config(address: &str, root: &str) -> ZkConfig {
    let mut cfg = ZkConfig::new(address);
    cfg.election_path = format!("{root}/election");
    cfg.leader_path = format!("{root}/leader");
    cfg.session_timeout = SESSION;
    cfg.connection_timeout = Duration::from_secs(5);
    cfg.max_backoff = Duration::from_millis(500);
    cfg.policy = ConnectionErrorPolicy::Session;
    cfg
}

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
