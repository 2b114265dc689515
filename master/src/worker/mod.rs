//! The worker agent (`primacy worker`): registers with the primary and keeps
//! it informed, across failovers.
//!
//! Worker state is the primary's soft state (never journaled): a new primary
//! does not know the workers. So the agent
//!
//! 1. finds the primary through the client library (ZooKeeper or the address
//!    list, following redirects) and registers: its address
//!    (`alluxio.worker.hostname:alluxio.worker.rpc.port`), the capacity of
//!    the file system holding its block directory, the bytes its blocks use,
//!    and a full block report ([`blocks`]);
//! 2. every `alluxio.worker.block.heartbeat.interval` sends a heartbeat with
//!    a fresh full block report;
//! 3. registers again, at once, when a heartbeat is answered REGISTER, when
//!    it was answered by a different master than the one it registered with
//!    (a failover), or when no primary answered within the client's retry
//!    duration. Each registration is logged with the primary's address.
//!
//! Addresses are compared as the client reached them: a primary reached once
//! as `localhost:19998` and once as `127.0.0.1:19998` counts as a change and
//! costs one extra registration, never a missed one.

pub mod blocks;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::client::{ClientError, MasterClient};
use crate::config::MasterConfig;
use crate::proto::rpc::worker_heartbeat_response::Command;
use crate::proto::rpc::{RegisterWorkerRequest, WorkerHeartbeatRequest};

use blocks::BlockDir;

/// Why the worker stopped (other than a requested shutdown).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration lacks something the worker needs.
    #[error("configuration: {0}")]
    Config(String),
    /// The block directory cannot be used.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the worker was doing.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The primary refused the worker in a way retrying cannot fix.
    #[error(transparent)]
    Client(ClientError),
}

/// What a worker is.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// Its RPC address (`host:port`), its identity across registrations.
    pub address: String,
    /// Its block directory.
    pub data_dir: PathBuf,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// The capacity to report; `None` reports the size of the file system
    /// holding `data_dir`.
    pub capacity_bytes: Option<u64>,
}

impl WorkerOptions {
    /// From `alluxio.worker.hostname` (default `localhost`),
    /// `alluxio.worker.rpc.port`, `alluxio.worker.data.folder` (or
    /// `${alluxio.work.dir}/worker`; required) and
    /// `alluxio.worker.block.heartbeat.interval` (at least 1 ms).
    pub fn from_config(cfg: &MasterConfig) -> Result<WorkerOptions, WorkerError> {
        let Some(folder) = &cfg.worker.data_folder else {
            return Err(WorkerError::Config(
                "alluxio.worker.data.folder is not set (nor alluxio.work.dir, which would default \
                 it to ${alluxio.work.dir}/worker); set it to the worker's block directory"
                    .into(),
            ));
        };
        let host = cfg.worker.hostname.as_deref().unwrap_or("localhost");
        Ok(WorkerOptions {
            address: format!("{host}:{}", cfg.worker.rpc_port),
            data_dir: PathBuf::from(folder),
            heartbeat_interval: cfg.worker.heartbeat_interval.max(Duration::from_millis(1)),
            capacity_bytes: None,
        })
    }
}

/// A running registration: the primary that accepted it and the id it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    primary: String,
    worker_id: u64,
}

/// The agent: one worker's loop of registrations and heartbeats.
#[derive(Debug)]
pub struct WorkerAgent {
    client: MasterClient,
    options: WorkerOptions,
    blocks: BlockDir,
}

impl WorkerAgent {
    /// An agent talking to the cluster `client` finds. Creates the block
    /// directory when absent.
    pub fn new(client: MasterClient, options: WorkerOptions) -> Result<WorkerAgent, WorkerError> {
        let blocks = BlockDir::open(&options.data_dir)?;
        Ok(WorkerAgent {
            client,
            options,
            blocks,
        })
    }

    /// Runs until `shutdown` completes (then `Ok`), or until an error that
    /// retrying cannot fix: an unreadable block directory, or the primary
    /// refusing the registration itself (INVALID_ARGUMENT and the like).
    /// An unreachable cluster is not such an error: the agent keeps trying.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(shutdown);
        let mut registration: Option<Registration> = None;
        loop {
            let step = async {
                match &registration {
                    None => self.register().await,
                    Some(r) => {
                        tokio::time::sleep(self.options.heartbeat_interval).await;
                        self.heartbeat(r).await
                    }
                }
            };
            let outcome = tokio::select! {
                _ = &mut shutdown => None,
                next = step => Some(next),
            };
            match outcome {
                None => {
                    tracing::info!(worker = %self.options.address, "worker stopping");
                    return Ok(());
                }
                Some(next) => registration = next?,
            }
        }
    }

    /// Registers with whichever master is primary. `Ok(None)` when no
    /// primary answered in time (the caller tries again).
    async fn register(&mut self) -> Result<Option<Registration>, WorkerError> {
        let report = self.blocks.scan()?;
        let capacity = match self.options.capacity_bytes {
            Some(c) => c,
            None => self.blocks.capacity()?,
        };
        let request = RegisterWorkerRequest {
            address: self.options.address.clone(),
            capacity_bytes: capacity,
            used_bytes: report.used_bytes,
            block_ids: report.block_ids,
        };
        let blocks = request.block_ids.len();
        match self.client.register_worker(request).await {
            Ok((primary, resp)) => {
                tracing::info!(
                    worker = %self.options.address,
                    %primary,
                    worker_id = resp.worker_id,
                    blocks,
                    "registered with the primary master at {primary}"
                );
                Ok(Some(Registration {
                    primary,
                    worker_id: resp.worker_id,
                }))
            }
            Err(e) => self.transient(e, "registering").map(|()| None),
        }
    }

    /// One heartbeat. `Ok(Some(r))` to keep going with `r`, `Ok(None)` to
    /// register again.
    async fn heartbeat(&mut self, r: &Registration) -> Result<Option<Registration>, WorkerError> {
        let report = self.blocks.scan()?;
        let request = WorkerHeartbeatRequest {
            worker_id: r.worker_id,
            used_bytes: report.used_bytes,
            block_ids: report.block_ids,
        };
        match self.client.worker_heartbeat(request).await {
            Ok((primary, _)) if primary != r.primary => {
                tracing::info!(
                    worker = %self.options.address,
                    old = %r.primary,
                    new = %primary,
                    "the primary changed; registering again"
                );
                Ok(None)
            }
            Ok((primary, resp)) if resp.command() == Command::Register => {
                tracing::info!(
                    worker = %self.options.address,
                    %primary,
                    "the primary asks this worker to register again"
                );
                Ok(None)
            }
            Ok(_) => Ok(Some(r.clone())),
            Err(e) => self.transient(e, "sending a heartbeat").map(|()| None),
        }
    }

    /// `Ok` (log and try again) for an unreachable cluster; the error for
    /// anything retrying cannot fix.
    fn transient(&self, e: ClientError, doing: &str) -> Result<(), WorkerError> {
        match e {
            ClientError::Unreachable { .. } => {
                tracing::warn!(worker = %self.options.address, error = %e, "{doing} failed; trying again");
                Ok(())
            }
            other => Err(WorkerError::Client(other)),
        }
    }
}
