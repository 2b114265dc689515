//! The peers primacy is compared with, reached over their own client RPC
//! with the same closed loop: ZooKeeper and etcd. A peer that is not
//! installed is skipped with a notice that says how to install it.

pub mod etcd;
pub mod failover;
pub mod run;
pub mod zookeeper;

use std::path::Path;

use crate::harness::load::Limits;
use crate::report::Record;
use run::PeerClients;

/// A peer deployment on loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// ZooKeeper with this many servers.
    ZooKeeper(usize),
    /// etcd with this many members.
    Etcd(usize),
}

/// Why a peer could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Not installed; the text says how to install it.
    #[error("not installed: {0}")]
    Missing(String),
    /// It did not start or did not answer.
    #[error("{0}")]
    Failed(String),
}

/// Its sessions spread over this many connections at most (the same for
/// every system: primacy's client too).
pub const CONNECTIONS: usize = 8;

impl Peer {
    /// Every peer, in the order shown.
    pub const ALL: [Peer; 4] = [
        Peer::ZooKeeper(1),
        Peer::ZooKeeper(3),
        Peer::Etcd(1),
        Peer::Etcd(3),
    ];

    /// The name in records and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Peer::ZooKeeper(1) => "zookeeper-1",
            Peer::ZooKeeper(_) => "zookeeper-3",
            Peer::Etcd(1) => "etcd-1",
            Peer::Etcd(_) => "etcd-3",
        }
    }

    /// The peer called `name`, if any.
    pub fn parse(name: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Starts the peer under `dir` and opens its client sessions; the
    /// servers live as long as the returned guard.
    pub async fn start(
        self,
        dir: &Path,
        connections: usize,
    ) -> Result<(Box<dyn std::any::Any>, PeerClients), PeerError> {
        match self {
            Peer::ZooKeeper(n) => {
                let servers = zookeeper::ZkServers::start(n, dir).map_err(|e| match e {
                    zookeeper::ZkError::NotInstalled => {
                        PeerError::Missing(zookeeper::INSTALL.into())
                    }
                    other => PeerError::Failed(other.to_string()),
                })?;
                let sessions = zookeeper::sessions(&servers.address(), connections)
                    .await
                    .map_err(PeerError::Failed)?;
                Ok((Box::new(servers), PeerClients::ZooKeeper(sessions)))
            }
            Peer::Etcd(n) => {
                let servers = etcd::EtcdServers::start(n, dir)
                    .await
                    .map_err(|e| match e {
                        etcd::EtcdError::NotInstalled => PeerError::Missing(etcd::INSTALL.into()),
                        other => PeerError::Failed(other.to_string()),
                    })?;
                let clients = servers.clients(connections);
                Ok((Box::new(servers), PeerClients::Etcd(clients)))
            }
        }
    }

    /// The names of its write, read and list operations.
    pub fn metadata_ops(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Peer::ZooKeeper(_) => ("create", "get-data", "get-children"),
            Peer::Etcd(_) => ("put", "get", "range"),
        }
    }

    /// The append scenario on this peer: durable writes of each size from
    /// each number of callers, through its client.
    pub async fn append(
        self,
        dir: &Path,
        concurrency: &[usize],
        sizes: &[usize],
        limits: Limits,
        progress: &(dyn Fn(String) + Sync),
    ) -> Result<Vec<Record>, PeerError> {
        let (servers, clients) = self.start(dir, CONNECTIONS).await?;
        let mut records = Vec::new();
        for &size in sizes {
            for &c in concurrency {
                progress(format!("{size} B x {c} writers"));
                let prefix = format!("/bench-{size}-{c}");
                clients.prepare(&prefix).await.map_err(PeerError::Failed)?;
                let (op, _, _) = self.metadata_ops();
                let create = run::PeerOp::Create {
                    prefix,
                    bytes: size,
                };
                records.push(
                    clients
                        .point("append", self.name(), op, create, c, limits)
                        .await,
                );
            }
        }
        drop(clients);
        drop(servers);
        Ok(records)
    }
}
