//! The operations of [`MasterClient`]: the file system calls, the worker
//! calls, and who-is-primary.

use std::time::Duration;

use bytes::Bytes;
use tonic::{Request, Response, Status};

use crate::meta::{FsPath, MetaError};
use crate::proto::meta::fs_result::Outcome;
use crate::proto::meta::{
    BlockInfo, CompleteFile, CreateFile, Delete, FileInfo, FsResult, Mkdir, Rename,
};
use crate::proto::rpc::file_system_master_client::FileSystemMasterClient;
use crate::proto::rpc::meta_master_client::MetaMasterClient;
use crate::proto::rpc::mutate_request::Op;
use crate::proto::rpc::worker_master_client::WorkerMasterClient;
use crate::proto::rpc::{
    ClusterInfo, GetClusterInfoRequest, GetMasterInfoRequest, MasterInfo, MutateRequest,
    PathRequest, RegisterWorkerRequest, RegisterWorkerResponse, WorkerHeartbeatRequest,
    WorkerHeartbeatResponse,
};

use super::call::ROLE_PRIMARY;
use super::retry::PRIMARY_METADATA_KEY;
use super::{ClientError, MasterClient};

/// Checks `path` locally, so a malformed one is refused before any I/O
/// (and without waiting for a primary).
fn checked(path: &str) -> Result<String, ClientError> {
    FsPath::parse(path)
        .map(|p| p.as_str().to_string())
        .map_err(|e| ClientError::InvalidArgument(e.to_string()))
}

fn refused_or<T>(
    address: &str,
    result: FsResult,
    pick: impl FnOnce(Outcome) -> Option<T>,
    wanted: &str,
) -> Result<T, ClientError> {
    match result.outcome {
        Some(Outcome::Error(e)) => Err(ClientError::Refused(MetaError::from(e))),
        Some(o) => pick(o).ok_or_else(|| ClientError::Protocol {
            address: address.to_string(),
            detail: format!("the result does not carry {wanted}"),
        }),
        None => Err(ClientError::Protocol {
            address: address.to_string(),
            detail: "empty result".into(),
        }),
    }
}

fn info(o: Outcome) -> Option<FileInfo> {
    match o {
        Outcome::Info(i) => Some(i),
        _ => None,
    }
}

impl MasterClient {
    /// Sends one mutation with a fresh request seq of a session no other
    /// call is using; every retry carries the same (client id, seq), so it
    /// is applied at most once even across a failover, and a retry gets the
    /// first attempt's result. The session is held until the call ends.
    async fn mutate(&self, what: String, op: Op) -> Result<(String, FsResult), ClientError> {
        let session = self.inner.take_session();
        let request = MutateRequest {
            client_id: Bytes::copy_from_slice(&session.client_id()),
            request_seq: session.seq(),
            op: Some(op),
        };
        self.inner
            .call(&what, |ch| {
                let request = request.clone();
                async move { FileSystemMasterClient::new(ch).mutate(request).await }
            })
            .await
    }

    /// Creates directory `path`; with `recursive` (mkdir -p) also its missing
    /// parents, and an existing directory is success. Returns the directory.
    pub async fn mkdir(&self, path: &str, recursive: bool) -> Result<FileInfo, ClientError> {
        let path = checked(path)?;
        let (addr, r) = self
            .mutate(
                format!("mkdir {path}"),
                Op::Mkdir(Mkdir { path, recursive }),
            )
            .await?;
        refused_or(&addr, r, info, "an inode")
    }

    /// Creates an empty, incomplete file at `path` (its parent must exist).
    pub async fn create_file(&self, path: &str) -> Result<FileInfo, ClientError> {
        let path = checked(path)?;
        let (addr, r) = self
            .mutate(
                format!("create {path}"),
                Op::CreateFile(CreateFile { path }),
            )
            .await?;
        refused_or(&addr, r, info, "an inode")
    }

    /// Seals file `path` with `blocks` (in order); its length becomes their sum.
    pub async fn complete_file(
        &self,
        path: &str,
        blocks: Vec<BlockInfo>,
    ) -> Result<FileInfo, ClientError> {
        let path = checked(path)?;
        let (addr, r) = self
            .mutate(
                format!("complete {path}"),
                Op::CompleteFile(CompleteFile { path, blocks }),
            )
            .await?;
        refused_or(&addr, r, info, "an inode")
    }

    /// Deletes `path`; a non-empty directory only with `recursive`. Returns
    /// the number of inodes removed (the target included).
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<u64, ClientError> {
        let path = checked(path)?;
        let (addr, r) = self
            .mutate(
                format!("delete {path}"),
                Op::Delete(Delete { path, recursive }),
            )
            .await?;
        let deleted = |o| match o {
            Outcome::Deleted(d) => Some(d.inodes),
            _ => None,
        };
        refused_or(&addr, r, deleted, "a deleted count")
    }

    /// Moves `src` to `dst` (which must not exist). Returns the moved inode.
    pub async fn rename(&self, src: &str, dst: &str) -> Result<FileInfo, ClientError> {
        let src = checked(src)?;
        let dst = checked(dst)?;
        let (addr, r) = self
            .mutate(
                format!("rename {src} to {dst}"),
                Op::Rename(Rename { src, dst }),
            )
            .await?;
        refused_or(&addr, r, info, "an inode")
    }

    /// The status of `path` (a linearizable read on the primary).
    pub async fn get_status(&self, path: &str) -> Result<FileInfo, ClientError> {
        let path = checked(path)?;
        let request = PathRequest { path: path.clone() };
        let (addr, r) = self
            .inner
            .call(&format!("stat {path}"), |ch| {
                let request = request.clone();
                async move { FileSystemMasterClient::new(ch).get_status(request).await }
            })
            .await?;
        refused_or(&addr, r, info, "an inode")
    }

    /// The children of directory `path` in name order (a file lists itself).
    pub async fn list_status(&self, path: &str) -> Result<Vec<FileInfo>, ClientError> {
        let path = checked(path)?;
        let request = PathRequest { path: path.clone() };
        let (addr, r) = self
            .inner
            .call(&format!("list {path}"), |ch| {
                let request = request.clone();
                async move { FileSystemMasterClient::new(ch).list_status(request).await }
            })
            .await?;
        let listing = |o| match o {
            Outcome::Listing(l) => Some(l.entries),
            _ => None,
        };
        refused_or(&addr, r, listing, "a listing")
    }

    /// The serving primary's RPC address (`host:port`, as this client reaches
    /// it), confirmed by the primary itself (`GetMasterInfo` answers PRIMARY).
    /// Retried like any call: waits for a primary up to the retry duration.
    pub async fn leader(&self) -> Result<String, ClientError> {
        self.leader_info().await.map(|(addr, _)| addr)
    }

    /// The serving primary's address and its own `MasterInfo`.
    pub async fn leader_info(&self) -> Result<(String, MasterInfo), ClientError> {
        self.inner
            .call("find the primary", |ch| async move {
                let info = MetaMasterClient::new(ch)
                    .get_master_info(Request::new(GetMasterInfoRequest {}))
                    .await?
                    .into_inner();
                if info.role == ROLE_PRIMARY {
                    return Ok(Response::new(info));
                }
                // A standby: treat it as a standby's redirect, so the retry
                // loop goes to the primary it names, or looks again.
                let mut status = Status::unavailable(format!("{} is {}", info.address, info.role));
                if let Ok(v) = info.primary_address.parse() {
                    status.metadata_mut().insert(PRIMARY_METADATA_KEY, v);
                }
                Err(status)
            })
            .await
    }

    /// `GetMasterInfo` of the master at `addr` (primary or standby), one
    /// attempt bounded by the connect timeout; no discovery, no retry.
    pub async fn master_info(&self, addr: &str) -> Result<MasterInfo, ClientError> {
        let limit = self.inner.connect_timeout.saturating_mul(2);
        let started = std::time::Instant::now();
        self.inner
            .ask_info(addr, limit)
            .await
            .map_err(|why| ClientError::Unreachable {
                op: format!("GetMasterInfo on {addr}"),
                elapsed: started.elapsed(),
                tried: vec![format!("{addr}: {why}")],
            })
    }

    /// `GetMasterInfo` of the master at `addr`, one attempt: connecting and
    /// the answer are each bounded by the connect timeout; no discovery, no
    /// retry. The error says in a few words why there was no answer.
    pub async fn probe(&self, addr: &str) -> Result<MasterInfo, String> {
        let limit = self.inner.connect_timeout.saturating_mul(2);
        self.inner.ask_info(addr, limit).await
    }

    /// The primary's view of the cluster (`GetClusterInfo`): every master
    /// with its state, applied sequence and lag, the workers, the recent
    /// role changes. Found and retried like any call, so it waits for a
    /// primary up to the retry duration. Returns the address that answered.
    pub async fn cluster_info(&self) -> Result<(String, ClusterInfo), ClientError> {
        self.inner
            .call("cluster info", |ch| async move {
                MetaMasterClient::new(ch)
                    .get_cluster_info(Request::new(GetClusterInfoRequest {}))
                    .await
            })
            .await
    }

    /// Registers a worker with the primary. Returns the primary's address
    /// (as reached) and its answer; the worker id is valid with that primary
    /// only.
    pub async fn register_worker(
        &self,
        request: RegisterWorkerRequest,
    ) -> Result<(String, RegisterWorkerResponse), ClientError> {
        self.inner
            .call(&format!("register worker {}", request.address), |ch| {
                let request = request.clone();
                async move { WorkerMasterClient::new(ch).register_worker(request).await }
            })
            .await
    }

    /// Sends a worker heartbeat to the primary. Returns the primary's address
    /// (as reached), so a worker sees a failover even when the new primary
    /// happens to know its id, and the answer.
    pub async fn worker_heartbeat(
        &self,
        request: WorkerHeartbeatRequest,
    ) -> Result<(String, WorkerHeartbeatResponse), ClientError> {
        self.inner
            .call(
                &format!("heartbeat of worker {}", request.worker_id),
                |ch| {
                    let request = request.clone();
                    async move { WorkerMasterClient::new(ch).worker_heartbeat(request).await }
                },
            )
            .await
    }

    /// The longest one call is retried (`alluxio.user.rpc.retry.max.duration`).
    pub fn max_retry_duration(&self) -> Duration {
        self.inner.retry.max_duration
    }
}
