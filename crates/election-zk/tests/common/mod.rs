#![allow(dead_code)]
//! Shared helpers for the ZooKeeper tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use election_zk::{ConnectionErrorPolicy, ZkConfig, ZkElection};
use journal_core::{ElectionState, LeaderElection};
use zookeeper_client as zk;

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

/// Expires `victim`'s session from outside: another client attaches to the
/// same session id and password and closes it. Against a single server the
/// victim can win the session back before the close lands, so this repeats
/// until the victim has left `Leader`/`Suspended` for a new session.
pub async fn expire_session(address: &str, victim: &ZkElection) {
    let Some(info) = victim.session() else {
        panic!("the victim has no session");
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(killer) = zk::Client::connector()
            .with_session(info.clone())
            .with_fail_eagerly()
            .connect(address)
            .await
        {
            let mut w = killer.state_watcher();
            drop(killer);
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                while w.changed().await != zk::SessionState::Closed {}
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let same = victim
            .session()
            .map(|s| s.id() == info.id())
            .unwrap_or(false);
        if !same {
            return;
        }
        if Instant::now() > deadline {
            panic!("could not expire the session from outside");
        }
    }
}
