//! How a client finds the primary: the ways Alluxio's HA clients use,
//! resolved from the configuration or from a URI's authority into one
//! [`Discovery`].

use std::fmt;
use std::time::Duration;

use crate::config::MasterConfig;

use super::error::ClientError;
use super::uri::Authority;

/// Where the primary's address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// Read the serving primary from ZooKeeper's leader path (the node the
    /// ZooKeeper election publishes, `<leader path>/<host:port>`, data = its
    /// epoch; the highest epoch wins while a deposed primary's node lingers).
    /// Each lookup opens a short-lived session (`election_zk::find_leader`);
    /// lookups happen only while the primary is unknown, so a steady client
    /// holds no ZooKeeper session.
    ZooKeeper {
        /// The ensemble, `host:port` each.
        ensemble: Vec<String>,
        /// `alluxio.zookeeper.leader.path`.
        leader_path: String,
        /// Bound on one lookup (connect and read): `alluxio.zookeeper.connection.timeout`.
        timeout: Duration,
    },
    /// Ask these masters who the primary is (`GetMasterInfo`), in order;
    /// standbys also redirect calls to it.
    Masters(Vec<String>),
}

impl fmt::Display for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discovery::ZooKeeper {
                ensemble,
                leader_path,
                ..
            } => write!(f, "ZooKeeper {} {leader_path}", ensemble.join(",")),
            Discovery::Masters(list) => write!(f, "masters {}", list.join(",")),
        }
    }
}

impl Discovery {
    /// The configuration's way, in Alluxio's order: ZooKeeper when
    /// `alluxio.zookeeper.enabled=true` (then `alluxio.master.rpc.addresses`
    /// is ignored, as in Alluxio); else `alluxio.master.rpc.addresses`; else
    /// the single master `alluxio.master.hostname:alluxio.master.rpc.port`
    /// (`localhost:19998` by default).
    ///
    /// Errors: ZooKeeper enabled without `alluxio.zookeeper.address`.
    pub fn from_config(cfg: &MasterConfig) -> Result<Discovery, ClientError> {
        if cfg.zookeeper.enabled {
            if cfg.zookeeper.address.is_empty() {
                return Err(ClientError::Config(
                    "alluxio.zookeeper.enabled=true but alluxio.zookeeper.address is not set; \
                     set it to the ensemble (host:port[,host:port...])"
                        .into(),
                ));
            }
            return Ok(Self::zookeeper(cfg, cfg.zookeeper.address.clone()));
        }
        if !cfg.rpc_addresses.is_empty() {
            return Ok(Discovery::Masters(cfg.rpc_addresses.clone()));
        }
        Ok(Discovery::Masters(vec![cfg.rpc_address()]))
    }

    /// The way a URI authority names, which takes precedence over the
    /// configuration; [`Authority::Configured`] falls back to
    /// [`Discovery::from_config`]. The ZooKeeper leader path and lookup
    /// timeout always come from the configuration.
    ///
    /// Errors: an `ebj@NAME` whose `alluxio.master.nameservices.NAME` is unset
    /// or empty.
    pub fn for_authority(auth: &Authority, cfg: &MasterConfig) -> Result<Discovery, ClientError> {
        match auth {
            Authority::Configured => Self::from_config(cfg),
            Authority::ZooKeeper(ensemble) => Ok(Self::zookeeper(cfg, ensemble.clone())),
            Authority::Masters(list) => Ok(Discovery::Masters(list.clone())),
            Authority::Nameservice(name) => match cfg.nameservices.get(name) {
                Some(list) if !list.is_empty() => Ok(Discovery::Masters(list.clone())),
                _ => Err(ClientError::Config(format!(
                    "logical name {name:?} (ebj@{name}) is not configured: set \
                     alluxio.master.nameservices.{name}=ID1,ID2,... and \
                     alluxio.master.rpc.address.{name}.ID=host:port for each ID"
                ))),
            },
        }
    }

    fn zookeeper(cfg: &MasterConfig, ensemble: Vec<String>) -> Discovery {
        Discovery::ZooKeeper {
            ensemble,
            leader_path: cfg.zookeeper.leader_path.clone(),
            timeout: cfg.zookeeper.connection_timeout,
        }
    }

    /// The master addresses this discovery knows up front (none for ZooKeeper).
    pub fn masters(&self) -> &[String] {
        match self {
            Discovery::Masters(list) => list,
            Discovery::ZooKeeper { .. } => &[],
        }
    }
}
