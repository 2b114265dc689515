//! MetaMaster: who is who, answered by every master. GetMasterInfo is
//! this master's own view; GetClusterInfo asks the others too
//! ([`crate::status::cluster::gather`]).

use std::sync::Arc;
use std::time::Instant;

use journal_core::Role;
use tonic::{Request, Response, Status};

use super::{gate, MasterState};
use crate::proto::rpc::meta_master_server::MetaMaster;
use crate::proto::rpc::{
    ClusterInfo, GetClusterInfoRequest, GetMasterInfoRequest, JournalInfo, MasterInfo, MemberInfo,
    WorkerInfo,
};

/// The MetaMaster service; never gated (standbys answer too).
pub struct InfoService {
    state: Arc<MasterState>,
}

impl InfoService {
    /// The service over `state`.
    pub fn new(state: Arc<MasterState>) -> Self {
        InfoService { state }
    }
}

/// This master's view: role and epoch from the role watch, the primary's
/// address (this master's own when it is the primary), the journal's
/// status, and the registry's workers when primary (empty otherwise).
pub fn master_info(state: &MasterState) -> MasterInfo {
    let role = *state.journal.role().borrow();
    let status = state.journal.status();
    let (role_name, epoch, primary_address) = match role {
        Role::Primary { epoch } => ("PRIMARY", epoch, state.address.clone()),
        Role::Standby => (
            "STANDBY",
            0,
            gate::primary_rpc_address(&status).unwrap_or_default(),
        ),
    };
    let workers = if role.is_primary() {
        let now = Instant::now();
        state
            .workers
            .lock()
            .workers()
            .map(|w| WorkerInfo {
                id: w.id,
                address: w.address.clone(),
                state: w.state.as_str().to_string(),
                ms_since_heartbeat: u64::try_from(
                    now.saturating_duration_since(w.last_heard).as_millis(),
                )
                .unwrap_or(u64::MAX),
                block_count: w.blocks.len() as u64,
                capacity_bytes: w.capacity_bytes,
                used_bytes: w.used_bytes,
            })
            .collect()
    } else {
        Vec::new()
    };
    MasterInfo {
        address: state.address.clone(),
        role: role_name.to_string(),
        epoch,
        primary_address,
        journal: Some(JournalInfo {
            backend: status.backend.to_string(),
            last_applied: status.last_applied,
            last_durable: status.last_durable,
            has_checkpoint: status.last_checkpoint.is_some(),
            last_checkpoint: status.last_checkpoint.unwrap_or_default(),
            location: status.location.clone(),
            members: status
                .members
                .iter()
                .map(|m| MemberInfo {
                    id: m.id.clone(),
                    address: m.address.clone(),
                    role: m.role.clone(),
                    has_applied: m.applied.is_some(),
                    applied: m.applied.unwrap_or_default(),
                })
                .collect(),
        }),
        workers,
        start_time_ms: state.start_time_ms,
        version: env!("CARGO_PKG_VERSION").to_string(),
        web_port: u32::from(state.status.settings.web_port),
        primacy_since_ms: if role.is_primary() {
            state
                .status
                .history
                .lock()
                .primacy_since_ms()
                .unwrap_or_default()
        } else {
            0
        },
    }
}

#[tonic::async_trait]
impl MetaMaster for InfoService {
    async fn get_master_info(
        &self,
        _request: Request<GetMasterInfoRequest>,
    ) -> Result<Response<MasterInfo>, Status> {
        Ok(Response::new(master_info(&self.state)))
    }

    async fn get_cluster_info(
        &self,
        _request: Request<GetClusterInfoRequest>,
    ) -> Result<Response<ClusterInfo>, Status> {
        Ok(Response::new(
            crate::status::cluster::gather(&self.state).await,
        ))
    }
}
