//! FileSystemMaster: journaled mutations and linearizable reads.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{gate, MasterState};
use crate::meta::{encode_entry, FsPath, FsResult, Op, MAX_CLIENT_ID_BYTES};
use crate::proto::rpc::file_system_master_server::FileSystemMaster;
use crate::proto::rpc::mutate_request;
use crate::proto::rpc::{MutateRequest, PathRequest};

/// The FileSystemMaster service. Serves on the primary only (see
/// [`gate`]); a request refused here (`INVALID_ARGUMENT`, `UNAVAILABLE`)
/// changed nothing, and an operation the state machine refuses is an `OK`
/// response carrying the `FsResult` error.
pub struct FsService {
    state: Arc<MasterState>,
}

impl FsService {
    /// The service over `state`.
    pub fn new(state: Arc<MasterState>) -> Self {
        FsService { state }
    }

    async fn read(
        &self,
        path: &str,
        query: impl FnOnce(&crate::meta::MetaMachine, &str) -> FsResult,
    ) -> Result<Response<FsResult>, Status> {
        gate::require_primary(&*self.state.journal)?;
        check_path("path", path)?;
        self.state.reads.barrier().await?;
        let result = query(&self.state.machine.read(), path);
        Ok(Response::new(result))
    }
}

/// Checks a request before anything is proposed: a client id of
/// 1..=[`MAX_CLIENT_ID_BYTES`] bytes, an operation, and valid paths
/// ([`FsPath::parse`]). Returns the journal op.
pub fn validate_mutate(req: MutateRequest) -> Result<(bytes::Bytes, u64, Op), Status> {
    let n = req.client_id.len();
    if n == 0 || n > MAX_CLIENT_ID_BYTES {
        return Err(Status::invalid_argument(format!(
            "client_id is {n} bytes; it must be 1..={MAX_CLIENT_ID_BYTES} bytes"
        )));
    }
    let op = match req.op {
        None => {
            return Err(Status::invalid_argument(
                "no operation: set one of mkdir, create_file, complete_file, delete, rename",
            ))
        }
        Some(mutate_request::Op::Mkdir(m)) => {
            check_path("mkdir path", &m.path)?;
            Op::Mkdir(m)
        }
        Some(mutate_request::Op::CreateFile(c)) => {
            check_path("create_file path", &c.path)?;
            Op::CreateFile(c)
        }
        Some(mutate_request::Op::CompleteFile(c)) => {
            check_path("complete_file path", &c.path)?;
            Op::CompleteFile(c)
        }
        Some(mutate_request::Op::Delete(d)) => {
            check_path("delete path", &d.path)?;
            Op::Delete(d)
        }
        Some(mutate_request::Op::Rename(r)) => {
            check_path("rename source", &r.src)?;
            check_path("rename destination", &r.dst)?;
            Op::Rename(r)
        }
    };
    Ok((req.client_id, req.request_seq, op))
}

/// `INVALID_ARGUMENT` naming the field, the path and the rule it breaks.
fn check_path(what: &str, path: &str) -> Result<(), Status> {
    FsPath::parse(path)
        .map(|_| ())
        .map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

#[tonic::async_trait]
impl FileSystemMaster for FsService {
    async fn mutate(&self, request: Request<MutateRequest>) -> Result<Response<FsResult>, Status> {
        let journal = &*self.state.journal;
        gate::require_primary(journal)?;
        let (client_id, seq, op) = validate_mutate(request.into_inner())?;
        let entry = encode_entry(&client_id, seq, self.state.stamp_time(), op);
        let output = journal
            .propose(entry)
            .await
            .map_err(|e| gate::journal_error(journal, e))?;
        Ok(Response::new(crate::meta::decode_result(output)))
    }

    async fn get_status(
        &self,
        request: Request<PathRequest>,
    ) -> Result<Response<FsResult>, Status> {
        let path = request.into_inner().path;
        self.read(&path, |m, p| m.get_status(p).into()).await
    }

    async fn list_status(
        &self,
        request: Request<PathRequest>,
    ) -> Result<Response<FsResult>, Status> {
        let path = request.into_inner().path;
        self.read(&path, |m, p| m.list_status(p).into()).await
    }
}
