//! WorkerMaster: registration and heartbeats into the primary's soft
//! worker registry ([`crate::workers`]). Nothing here is journaled.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::{gate, MasterState};
use crate::proto::rpc::worker_heartbeat_response::Command;
use crate::proto::rpc::worker_master_server::WorkerMaster;
use crate::proto::rpc::{
    RegisterWorkerRequest, RegisterWorkerResponse, WorkerHeartbeatRequest, WorkerHeartbeatResponse,
};
use crate::workers::HeartbeatCommand;

/// The WorkerMaster service. Serves on the primary only (see [`gate`]).
pub struct WorkerService {
    state: Arc<MasterState>,
}

impl WorkerService {
    /// The service over `state`.
    pub fn new(state: Arc<MasterState>) -> Self {
        WorkerService { state }
    }
}

#[tonic::async_trait]
impl WorkerMaster for WorkerService {
    async fn register_worker(
        &self,
        request: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        gate::require_primary(&*self.state.journal)?;
        let r = request.into_inner();
        if r.address.is_empty() || r.address.len() > 1024 {
            // Quoted cut short: the status travels in an HTTP/2 header, and
            // echoing a long address whole would break the answer itself.
            return Err(Status::invalid_argument(format!(
                "address {}: a worker registers with its RPC address host:port (1..=1024 bytes)",
                crate::meta::Shown::new(&r.address)
            )));
        }
        let worker_id = self.state.workers.lock().register(
            &r.address,
            r.capacity_bytes,
            r.used_bytes,
            r.block_ids,
            Instant::now(),
        );
        tracing::info!(worker = %r.address, id = worker_id, "worker registered");
        Ok(Response::new(RegisterWorkerResponse { worker_id }))
    }

    async fn worker_heartbeat(
        &self,
        request: Request<WorkerHeartbeatRequest>,
    ) -> Result<Response<WorkerHeartbeatResponse>, Status> {
        gate::require_primary(&*self.state.journal)?;
        let r = request.into_inner();
        let command = match self.state.workers.lock().heartbeat(
            r.worker_id,
            r.used_bytes,
            r.block_ids,
            Instant::now(),
        ) {
            HeartbeatCommand::Nothing => Command::Nothing,
            HeartbeatCommand::Register => Command::Register,
        };
        Ok(Response::new(WorkerHeartbeatResponse {
            command: command as i32,
        }))
    }
}
