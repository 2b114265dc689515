//! The master's client: finds the primary, follows failovers, and retries so
//! that a mutation retried across a failover is applied once.
//!
//! - **Finding the primary** ([`Discovery`]): ZooKeeper's leader
//!   path when `alluxio.zookeeper.enabled=true`; else asking each of
//!   `alluxio.master.rpc.addresses` (`GetMasterInfo`, all at once); else the
//!   single `alluxio.master.hostname:alluxio.master.rpc.port`. A URI authority
//!   ([`ClusterUri`]: `primacy://zk@h1:2181;h2:2181/p`,
//!   `primacy://h1:19998,h2:19998/p`, `primacy://ebj@NAME/p`, `alluxio://`
//!   alike) takes precedence over the configuration.
//! - **Following failovers**: a standby answers UNAVAILABLE naming the primary
//!   in the `primacy-primary` response metadata; the client goes there at
//!   once. Other transient failures (connection refused or reset, no primary
//!   yet) are retried with exponential back-off (`alluxio.user.rpc.retry.
//!   base.sleep`, doubling up to `max.sleep`) until
//!   `alluxio.user.rpc.retry.max.duration` is spent, then
//!   [`ClientError::Unreachable`] lists what was tried.
//! - **Exactly once**: each mutation is sent with a (client id, request
//!   seq) pair and every retry of it carries the same pair, so the primary's
//!   state machine applies it once and answers a retry with the first
//!   result. The machine keeps only the last seq per client id (a lower one
//!   is refused), so a client id never has two mutations outstanding: a
//!   [`MasterClient`] keeps a pool of sessions (a random 16-byte id and its
//!   next seq), and concurrent mutations take different ones.
//! - Channels are cached per address; connecting is bounded by
//!   [`DEFAULT_CONNECT_TIMEOUT`] (or [`ClientOptions::connect_timeout`]).

mod call;
mod discovery;
mod error;
mod journal_ops;
mod ops;
mod retry;
mod uri;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{MasterConfig, RetrySettings};

pub(crate) use call::chain;
pub use discovery::Discovery;
pub use error::ClientError;
pub use retry::{backoff, classify, primary_hint, RetryStats, Verdict, PRIMARY_METADATA_KEY};
pub use uri::{Authority, ClusterUri, UriError, DEFAULT_MASTER_PORT, DEFAULT_ZK_PORT};

pub use crate::proto::meta::{BlockInfo, FileInfo};
pub use crate::proto::rpc::{ClusterInfo, MasterInfo};

/// How long one connection attempt to a master may take (also bounds one
/// `GetMasterInfo` while looking for the primary).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Tuning of a [`MasterClient`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// Retry back-off and the longest a call is retried.
    pub retry: RetrySettings,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
    /// What every request carries to prove it comes from a holder of the
    /// cluster secret (nothing by default).
    pub credentials: journal_raft::auth::ClientAuth,
}

impl ClientOptions {
    /// The configuration's retry settings, [`DEFAULT_CONNECT_TIMEOUT`] and
    /// credentials (when a cluster secret is configured).
    pub fn from_config(cfg: &MasterConfig) -> ClientOptions {
        ClientOptions {
            retry: cfg.user_retry.clone(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            credentials: cfg.rpc_credentials(),
        }
    }
}

/// A client of one cluster's primary master. Cloning is cheap (an `Arc`);
/// clones share the channel cache, the known primary and the session pool,
/// and may be used concurrently (each concurrent mutation takes its own
/// session, so none is refused as stale).
///
/// Calls need a Tokio runtime (any flavour).
#[derive(Clone)]
pub struct MasterClient {
    inner: Arc<call::Inner>,
}

impl std::fmt::Debug for MasterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterClient")
            .field("discovery", &self.inner.discovery)
            .field("primary", &self.inner.cached_primary())
            .finish()
    }
}

impl MasterClient {
    /// A client that finds the primary with `discovery`. Does no I/O; the
    /// first call looks for the primary.
    pub fn new(discovery: Discovery, options: ClientOptions) -> MasterClient {
        let client_id = *uuid::Uuid::new_v4().as_bytes();
        MasterClient {
            inner: Arc::new(call::Inner::new(
                discovery,
                options.retry,
                options.connect_timeout,
                client_id,
                options.credentials,
            )),
        }
    }

    /// A client of the configuration's cluster ([`Discovery::from_config`]).
    pub fn from_config(cfg: &MasterConfig) -> Result<MasterClient, ClientError> {
        Ok(Self::new(
            Discovery::from_config(cfg)?,
            ClientOptions::from_config(cfg),
        ))
    }

    /// A client of the cluster `uri`'s authority names (the configuration's
    /// for a plain path or an empty authority).
    pub fn for_uri(uri: &ClusterUri, cfg: &MasterConfig) -> Result<MasterClient, ClientError> {
        Ok(Self::new(
            Discovery::for_authority(&uri.authority, cfg)?,
            ClientOptions::from_config(cfg),
        ))
    }

    /// Parses `uri` ([`ClusterUri::parse`]) and returns a client of its
    /// cluster with the path inside it.
    pub fn from_uri(uri: &str, cfg: &MasterConfig) -> Result<(MasterClient, String), ClientError> {
        let parsed = ClusterUri::parse(uri)?;
        let client = Self::for_uri(&parsed, cfg)?;
        Ok((client, parsed.path))
    }

    /// How this client finds the primary.
    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    /// The id of this client's first session: every mutation of a client
    /// used by one task at a time is sent with it. Concurrent mutations use
    /// further random ids.
    pub fn client_id(&self) -> [u8; 16] {
        self.inner.client_id
    }

    /// How many calls of this client and its clones needed another attempt
    /// (a standby's redirect or a back-off after a transient failure), and
    /// how many extra attempts they made, since it was created. Two relaxed
    /// atomic counters: cheap, and exact once the calls have returned.
    pub fn retry_stats(&self) -> RetryStats {
        self.inner.retry_stats()
    }

    /// The primary's address as last seen by a call, if any (no I/O).
    pub fn known_primary(&self) -> Option<String> {
        self.inner.cached_primary()
    }
}
