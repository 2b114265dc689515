//! Settings of the ZooKeeper election, with Alluxio's keys and primacy's defaults.

use std::time::Duration;

use journal_core::JournalError;

/// `alluxio.zookeeper.address`
pub const ADDRESS_KEY: &str = "alluxio.zookeeper.address";
/// `alluxio.zookeeper.election.path`
pub const ELECTION_PATH_KEY: &str = "alluxio.zookeeper.election.path";
/// `alluxio.zookeeper.leader.path`
pub const LEADER_PATH_KEY: &str = "alluxio.zookeeper.leader.path";
/// `alluxio.zookeeper.session.timeout`
pub const SESSION_TIMEOUT_KEY: &str = "alluxio.zookeeper.session.timeout";
/// `alluxio.zookeeper.connection.timeout`
pub const CONNECTION_TIMEOUT_KEY: &str = "alluxio.zookeeper.connection.timeout";
/// `alluxio.zookeeper.leader.connection.error.policy`
pub const POLICY_KEY: &str = "alluxio.zookeeper.leader.connection.error.policy";

/// What a leader does when its connection to ZooKeeper is lost (not yet expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionErrorPolicy {
    /// Give up leadership at once (Curator's classic behaviour).
    Standard,
    /// Stop serving but keep the claim; resume if the same session reconnects
    /// before it expires, give up only on expiry.
    Session,
}

/// How to reach ZooKeeper and where the election lives.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// Comma-separated `host:port` ensemble (`alluxio.zookeeper.address`).
    pub address: String,
    /// Parent of the contenders' nodes (`alluxio.zookeeper.election.path`).
    pub election_path: String,
    /// Parent of the serving primary's address node (`alluxio.zookeeper.leader.path`).
    pub leader_path: String,
    /// Session timeout asked of the server (`alluxio.zookeeper.session.timeout`).
    pub session_timeout: Duration,
    /// How long one connection attempt may take (`alluxio.zookeeper.connection.timeout`).
    pub connection_timeout: Duration,
    /// Behaviour on connection loss (`alluxio.zookeeper.leader.connection.error.policy`).
    pub policy: ConnectionErrorPolicy,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
}

impl ZkConfig {
    /// Defaults (as docs/configuration.md lists them) for the ensemble `address`.
    pub fn new(address: impl Into<String>) -> Self {
        ZkConfig {
            address: address.into(),
            election_path: "/alluxio/election".into(),
            leader_path: "/alluxio/leader".into(),
            session_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(15),
            policy: ConnectionErrorPolicy::Session,
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Checks every value; errors name the key.
    pub fn validate(&self) -> Result<(), JournalError> {
        validate_address(&self.address)?;
        for (key, path) in [
            (ELECTION_PATH_KEY, &self.election_path),
            (LEADER_PATH_KEY, &self.leader_path),
        ] {
            if !path.starts_with('/')
                || path.len() < 2
                || path.ends_with('/')
                || path.contains("//")
            {
                return Err(JournalError::config(
                    key,
                    format!("{path:?} is not an absolute ZooKeeper path like /alluxio/election"),
                ));
            }
        }
        if self.election_path == self.leader_path
            || self
                .leader_path
                .starts_with(&format!("{}/", self.election_path))
            || self
                .election_path
                .starts_with(&format!("{}/", self.leader_path))
        {
            return Err(JournalError::config(
                LEADER_PATH_KEY,
                format!(
                    "{} and {ELECTION_PATH_KEY} ({}) must be separate paths",
                    self.leader_path, self.election_path
                ),
            ));
        }
        if self.session_timeout < Duration::from_millis(100) {
            return Err(JournalError::config(
                SESSION_TIMEOUT_KEY,
                "must be at least 100ms",
            ));
        }
        if self.connection_timeout.is_zero() {
            return Err(JournalError::config(
                CONNECTION_TIMEOUT_KEY,
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}

/// Checks a comma-separated `host:port` list.
pub fn validate_address(address: &str) -> Result<(), JournalError> {
    if address.trim().is_empty() {
        return Err(JournalError::config(
            ADDRESS_KEY,
            "is empty; set it to host:port[,host:port...]",
        ));
    }
    for part in address.split(',') {
        let part = part.trim();
        let valid = part
            .rsplit_once(':')
            .map(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
            .unwrap_or(false);
        if !valid {
            return Err(JournalError::config(
                ADDRESS_KEY,
                format!("{part:?} is not host:port (in {address:?})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        ZkConfig::new("127.0.0.1:2181,h2:2181").validate().unwrap();
        let bad = |f: &dyn Fn(&mut ZkConfig), key: &str| {
            let mut c = ZkConfig::new("h:2181");
            f(&mut c);
            match c.validate() {
                Err(JournalError::Config { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        };
        bad(&|c| c.address = "".into(), ADDRESS_KEY);
        bad(&|c| c.address = "h:2181,nope".into(), ADDRESS_KEY);
        bad(&|c| c.address = "h:99999".into(), ADDRESS_KEY);
        bad(&|c| c.election_path = "alluxio".into(), ELECTION_PATH_KEY);
        bad(
            &|c| c.leader_path = "/alluxio/leader/".into(),
            LEADER_PATH_KEY,
        );
        bad(
            &|c| c.leader_path = "/alluxio/election/x".into(),
            LEADER_PATH_KEY,
        );
        bad(
            &|c| c.session_timeout = Duration::from_millis(1),
            SESSION_TIMEOUT_KEY,
        );
    }
}
