//! Real ZooKeeper servers for tests (feature `testkit`).
//!
//! Each server is the Debian package's ZooKeeper (`/usr/share/java/zookeeper.jar`)
//! run as a child JVM on a free loopback port with a fresh data directory and
//! a 200 ms tick, so sessions of 1-2 s expire quickly. Servers are killed when
//! their handle is dropped, and also when the test process dies (the child
//! gets SIGKILL through `PR_SET_PDEATHSIG`), so no JVM outlives a test.

mod expire;
mod server;

pub use expire::expire_session;
pub use server::{free_port, ZkEnsemble, ZkServer};

/// A ZooKeeper config for tests: election and leader paths under `root`
/// (one root per test keeps tests apart on one server), a 2 s session, the
/// SESSION policy and short reconnection backoff.
pub fn test_config(address: &str, root: &str) -> crate::ZkConfig {
    let mut cfg = crate::ZkConfig::new(address);
    cfg.election_path = format!("{root}/election");
    cfg.leader_path = format!("{root}/leader");
    cfg.session_timeout = std::time::Duration::from_millis(2000);
    cfg.connection_timeout = std::time::Duration::from_secs(5);
    cfg.max_backoff = std::time::Duration::from_millis(500);
    cfg.policy = crate::ConnectionErrorPolicy::Session;
    cfg
}
