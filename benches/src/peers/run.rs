//! The closed loop on a peer: the same callers, limits and records as
//! primacy's, with the peer's nearest operation.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::load::{closed_loop, Limits};
use crate::peers::etcd::proto::kv_client::KvClient;
use crate::peers::{etcd, zookeeper};
use crate::report::Record;
use tonic::transport::Channel;

/// A peer with its client sessions open.
pub enum PeerClients {
    /// ZooKeeper sessions (operations spread over them).
    ZooKeeper(Vec<Arc<zookeeper_client::Client>>),
    /// etcd KV clients (operations spread over them).
    Etcd(Vec<KvClient<Channel>>),
}

/// One kind of operation on a peer.
#[derive(Debug, Clone)]
pub enum PeerOp {
    /// A durable write of `bytes` at a fresh name under `prefix`.
    Create {
        /// Parent of the new names.
        prefix: String,
        /// Payload size.
        bytes: usize,
    },
    /// A linearizable-as-the-peer-offers read of `prefix/f{n % keys}`.
    Get {
        /// Parent of the keys.
        prefix: String,
        /// How many keys exist (`f0`..).
        keys: u64,
    },
    /// The children of `prefix`.
    List {
        /// The listed node.
        prefix: String,
    },
}

fn payload(bytes: usize) -> Arc<Vec<u8>> {
    // Not all zeros, like the journal's entries.
    Arc::new((0..bytes).map(|i| (i * 131 % 251) as u8).collect())
}

impl PeerClients {
    /// One closed-loop point of `op` from `concurrency` callers.
    pub async fn point(
        &self,
        scenario: &str,
        system: &str,
        operation: &str,
        op: PeerOp,
        concurrency: usize,
        limits: Limits,
    ) -> Record {
        let bytes = match &op {
            PeerOp::Create { bytes, .. } => *bytes,
            _ => 0,
        };
        let data = payload(bytes);
        let sample = match self {
            PeerClients::ZooKeeper(sessions) => {
                let sessions = sessions.clone();
                closed_loop(concurrency, limits, move |caller, n| {
                    let c = sessions[caller % sessions.len()].clone();
                    let (op, data) = (op.clone(), data.clone());
                    async move {
                        match op {
                            PeerOp::Create { prefix, .. } => {
                                zookeeper::create(&c, &format!("{prefix}/n{n}"), &data).await
                            }
                            PeerOp::Get { prefix, keys } => {
                                let path = format!("{prefix}/f{}", n % keys.max(1));
                                c.get_data(&path)
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| format!("get {path}: {e}"))
                            }
                            PeerOp::List { prefix } => c
                                .list_children(&prefix)
                                .await
                                .map(|_| ())
                                .map_err(|e| format!("children of {prefix}: {e}")),
                        }
                    }
                })
                .await
            }
            PeerClients::Etcd(clients) => {
                let clients = clients.clone();
                closed_loop(concurrency, limits, move |caller, n| {
                    let mut kv = clients[caller % clients.len()].clone();
                    let (op, data) = (op.clone(), data.clone());
                    async move {
                        match op {
                            PeerOp::Create { prefix, .. } => {
                                etcd::put(&mut kv, format!("{prefix}/n{n}"), data.to_vec()).await
                            }
                            PeerOp::Get { prefix, keys } => {
                                etcd::get(&mut kv, format!("{prefix}/f{}", n % keys.max(1))).await
                            }
                            PeerOp::List { prefix } => etcd::list(&mut kv, &prefix).await,
                        }
                    }
                })
                .await
            }
        };
        Record::from_sample(
            scenario,
            system,
            "client-rpc",
            operation,
            concurrency,
            bytes,
            &sample,
        )
    }

    /// Creates the parent `prefix` of a point's writes.
    pub async fn prepare(&self, prefix: &str) -> Result<(), String> {
        match self {
            PeerClients::ZooKeeper(sessions) => match sessions.first() {
                Some(c) => zookeeper::ensure(c, prefix).await,
                None => Err("no session".into()),
            },
            // etcd's keys are flat: a prefix needs no parent.
            PeerClients::Etcd(_) => Ok(()),
        }
    }

    /// Creates `prefix` and `count` children `f0`.. under it (reads' keys).
    pub async fn fill(&self, prefix: &str, count: u64) -> Result<(), String> {
        self.prepare(prefix).await?;
        let limits = Limits {
            duration: Duration::from_secs(600),
            max_ops: Some(count),
        };
        let sample = match self {
            PeerClients::ZooKeeper(sessions) => {
                let sessions = sessions.clone();
                let prefix = prefix.to_string();
                closed_loop(16, limits, move |caller, n| {
                    let c = sessions[caller % sessions.len()].clone();
                    let path = format!("{prefix}/f{n}");
                    async move { zookeeper::create(&c, &path, b"").await }
                })
                .await
            }
            PeerClients::Etcd(clients) => {
                let clients = clients.clone();
                let prefix = prefix.to_string();
                closed_loop(16, limits, move |caller, n| {
                    let mut kv = clients[caller % clients.len()].clone();
                    let key = format!("{prefix}/f{n}");
                    async move { etcd::put(&mut kv, key, Vec::new()).await }
                })
                .await
            }
        };
        match sample.first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
