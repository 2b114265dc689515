//! What a master knows about itself and its cluster, for the status page,
//! `/api/v1/master/info`, `/api/v1/master/health`, `/metrics` and
//! `primacy info report` (which all show the same facts).
//!
//! - [`history`]: the last role changes, with time and reason.
//! - [`cluster`]: the cluster view: every master this one knows of (the
//!   journal's membership, `alluxio.master.rpc.addresses`, ZooKeeper's
//!   contenders, the known primary), each asked with `GetMasterInfo` under
//!   a short timeout, so one unreachable master costs at most
//!   [`PEER_TIMEOUT`] twice and is listed as UNREACHABLE.
//! - [`health`]: whether this master can serve its role.
//! - [`json`]: the one JSON form of the cluster view (field names are
//!   stable and documented in docs/operations.md).

pub mod cluster;
pub mod coalesce;
pub mod health;
pub mod history;
pub mod json;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::client::{ClientOptions, Discovery, MasterClient};
use crate::config::{Backend, MasterConfig, RetrySettings};
use crate::metrics::MasterMetrics;
use crate::proto::rpc::{ClusterInfo, MasterInfo};

pub use history::RoleHistory;

/// Bound on connecting to another master, and again on its answer, when
/// asking it for its status.
pub const PEER_TIMEOUT: Duration = Duration::from_millis(500);

/// `info report`'s and the page's word for a master's state.
pub mod state {
    /// Serving.
    pub const PRIMARY: &str = "PRIMARY";
    /// Following the primary, at most `primacy.master.standby.max.lag`
    /// entries behind (or the primary is unknown).
    pub const STANDBY: &str = "STANDBY";
    /// A standby further behind the primary than the allowed lag.
    pub const CATCHING_UP: &str = "CATCHING_UP";
    /// Did not answer `GetMasterInfo` in time.
    pub const UNREACHABLE: &str = "UNREACHABLE";
}

/// A ZooKeeper ensemble to list the election's contenders from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkLookup {
    /// `host:port[,host:port...]`.
    pub ensemble: String,
    /// `alluxio.zookeeper.election.path`.
    pub election_path: String,
    /// `alluxio.zookeeper.leader.path`.
    pub leader_path: String,
}

/// What the configuration says about the cluster, for the status views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `UFS` or `EMBEDDED`.
    pub journal_type: &'static str,
    /// `ZOOKEEPER`, `RAFT` or `NONE`.
    pub election: &'static str,
    /// This master's `alluxio.master.web.port` (0: no status server).
    pub web_port: u16,
    /// `primacy.master.standby.max.lag`.
    pub standby_max_lag: u64,
    /// `alluxio.master.rpc.addresses`.
    pub rpc_addresses: Vec<String>,
    /// The ensemble to list contenders from (UFS + ZooKeeper only).
    pub zookeeper: Option<ZkLookup>,
    /// What this master's calls to the other masters carry (status
    /// lookups, handoff).
    pub credentials: journal_raft::auth::ClientAuth,
}

impl ClusterSettings {
    /// The settings of a master configured by `cfg` with `backend`.
    pub fn from_config(cfg: &MasterConfig, backend: Backend) -> ClusterSettings {
        let (journal_type, election) = match backend {
            Backend::Embedded => ("EMBEDDED", "RAFT"),
            Backend::UfsZooKeeper => ("UFS", "ZOOKEEPER"),
            Backend::UfsSingle => ("UFS", "NONE"),
        };
        let zookeeper = (backend == Backend::UfsZooKeeper).then(|| ZkLookup {
            ensemble: cfg.zookeeper.address.join(","),
            election_path: cfg.zookeeper.election_path.clone(),
            leader_path: cfg.zookeeper.leader_path.clone(),
        });
        ClusterSettings {
            journal_type,
            election,
            web_port: cfg.web_port,
            standby_max_lag: cfg.standby_max_lag,
            rpc_addresses: cfg.rpc_addresses.clone(),
            zookeeper,
            credentials: cfg.rpc_credentials(),
        }
    }

    /// A lone UFS master with no status server (unit tests).
    pub fn standalone() -> ClusterSettings {
        ClusterSettings {
            journal_type: "UFS",
            election: "NONE",
            web_port: 0,
            standby_max_lag: 10_000,
            rpc_addresses: Vec::new(),
            zookeeper: None,
            credentials: Default::default(),
        }
    }
}

/// The status side of a master: settings, role history, metrics, and a
/// client to ask the other masters.
pub struct StatusContext {
    /// What the configuration says.
    pub settings: ClusterSettings,
    /// This master's recent role changes.
    pub history: Mutex<RoleHistory>,
    /// This master's metrics registry.
    pub metrics: Arc<MasterMetrics>,
    peers: MasterClient,
    /// The cluster view, shared by requests that overlap
    /// ([`cluster::gather`]).
    view: coalesce::Coalesced<ClusterInfo>,
    /// ZooKeeper's word on the primary, shared likewise
    /// ([`primary_address`]).
    published_primary: coalesce::Coalesced<Option<String>>,
}

impl std::fmt::Debug for StatusContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusContext")
            .field("settings", &self.settings)
            .finish()
    }
}

impl StatusContext {
    /// A context over `settings`, counting into `metrics`.
    pub fn new(settings: ClusterSettings, metrics: Arc<MasterMetrics>) -> StatusContext {
        // Connections to the other masters are cached (and dropped after a
        // failure) by the client; it never retries: a status view wants
        // an answer now, or "unreachable".
        let options = ClientOptions {
            retry: RetrySettings {
                max_duration: PEER_TIMEOUT * 2,
                base_sleep: PEER_TIMEOUT,
                max_sleep: PEER_TIMEOUT,
            },
            connect_timeout: PEER_TIMEOUT,
            credentials: settings.credentials.clone(),
        };
        StatusContext {
            settings,
            history: Mutex::new(RoleHistory::default()),
            metrics,
            peers: MasterClient::new(Discovery::Masters(Vec::new()), options),
            view: coalesce::Coalesced::default(),
            published_primary: coalesce::Coalesced::default(),
        }
    }

    /// A standalone context with a fresh registry (unit tests).
    pub fn standalone() -> StatusContext {
        Self::new(
            ClusterSettings::standalone(),
            Arc::new(MasterMetrics::new()),
        )
    }

    /// `GetMasterInfo` of the master at `address`, one attempt bounded by
    /// [`PEER_TIMEOUT`] to connect and again to answer.
    pub async fn ask(&self, address: &str) -> Result<MasterInfo, String> {
        self.peers.probe(address).await
    }
}

/// The primary's RPC address as this master can learn it: its journal's
/// (the election's or Raft's) word, else, with ZooKeeper, the serving
/// primary published under the leader path (read with a short-lived
/// session bounded by [`cluster::ZK_LOOKUP_TIMEOUT`]). A UFS standby that
/// joined the election before the primary published itself learns it from
/// the election only when its predecessor changes, so the lookup fills
/// that gap. `None` when neither knows.
pub async fn primary_address(state: &crate::rpc::MasterState) -> Option<String> {
    if let Some(known) = crate::rpc::gate::primary_rpc_address(&state.journal.status()) {
        return Some(known);
    }
    let zk = state.status.settings.zookeeper.as_ref()?;
    // Health probes and scrapes may come in floods; they share a session.
    let lookup = || async {
        let found =
            election_zk::find_leader(&zk.ensemble, &zk.leader_path, cluster::ZK_LOOKUP_TIMEOUT);
        match tokio::time::timeout(cluster::ZK_LOOKUP_TIMEOUT, found).await {
            Ok(Ok(leader)) => leader,
            _ => None,
        }
    };
    state.status.published_primary.get(lookup).await
}
