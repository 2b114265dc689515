//! JournalMaster: `primacy journal checkpoint` and `primacy journal quorum
//! info|elect|add|remove`, answered by the primary (see [`gate`]).
//!
//! Error codes are chosen so the client retries only what a retry can fix:
//! `UNAVAILABLE` (with the primary's address) when this master is not the
//! primary; `NOT_FOUND` for an address no member has; `INVALID_ARGUMENT`
//! for a malformed address; `FAILED_PRECONDITION` for everything the
//! operator must look at (the UFS journal has no quorum, a target that is
//! down or behind, a membership change in progress, a timeout), with the
//! reason in the message.

use std::sync::Arc;
use std::time::Instant;

use journal_core::{JournalError, MemberStatus};
use tonic::{Request, Response, Status};

use super::handoff::{self, HandoffError};
use super::{gate, MasterState};
use crate::proto::rpc::journal_master_server::JournalMaster;
use crate::proto::rpc::{
    CheckpointRequest, CheckpointResponse, GetQuorumInfoRequest, QuorumInfo, QuorumMember,
    QuorumMemberRequest, TransferLeadershipRequest, TransferLeadershipResponse,
};

/// The JournalMaster service.
pub struct JournalService {
    state: Arc<MasterState>,
}

impl JournalService {
    /// The service over `state`.
    pub fn new(state: Arc<MasterState>) -> Self {
        JournalService { state }
    }

    fn backend(&self) -> &'static str {
        self.state.journal.status().backend
    }

    /// `FAILED_PRECONDITION` for a membership operation on the UFS journal.
    fn embedded_only(&self, what: &str) -> Result<(), Status> {
        if self.backend() == "EMBEDDED" {
            return Ok(());
        }
        Err(Status::failed_precondition(format!(
            "{what} works with the embedded journal only \
             (alluxio.master.journal.type=EMBEDDED); this cluster uses the {} journal, whose \
             masters share one journal folder and have no quorum membership: start or stop a \
             master to add or remove it",
            self.backend()
        )))
    }

    async fn members(&self) -> Result<Vec<MemberStatus>, Status> {
        self.state
            .journal
            .members()
            .await
            .map_err(|e| admin_error(&self.state, e))
    }

    async fn quorum(&self) -> Result<QuorumInfo, Status> {
        let members = self.members().await?;
        Ok(quorum_info(&self.state, &members))
    }
}

/// Longest address or member id the service reads, in bytes (a DNS name
/// is at most 253; the rest is room for a port and brackets).
pub const MAX_ADDRESS_BYTES: usize = 1024;

/// Why `address` is not a `host:port` (or, when `ids` is true, a member
/// id: a decimal number from 1 to u64::MAX), or `None` when it is one.
/// The input is quoted cut to 200 characters: a status message travels in
/// an HTTP/2 header, and echoing a megabyte of input would break the answer
/// itself (the client would see a protocol error instead of the refusal).
pub fn address_problem(address: &str, ids: bool) -> Option<String> {
    let a = address.trim();
    let expected = if ids {
        "expected host:port or a member id"
    } else {
        "expected host:port"
    };
    let shown = crate::meta::Shown::new(address);
    if a.is_empty() {
        return Some(format!("address {shown} is empty: {expected}"));
    }
    if a.len() > MAX_ADDRESS_BYTES {
        return Some(format!(
            "address {shown} is {} bytes, longer than the {MAX_ADDRESS_BYTES}-byte limit: {expected}",
            a.len()
        ));
    }
    if a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "address {shown} holds whitespace or a control character: {expected}"
        ));
    }
    if a.bytes().all(|b| b.is_ascii_digit()) {
        return match (ids, a.parse::<u64>()) {
            (true, Ok(id)) if id != 0 => None,
            (true, _) => Some(format!(
                "member id {shown} is out of range (1 to {}): {expected}",
                u64::MAX
            )),
            (false, _) => Some(format!("address {shown}: {expected}")),
        };
    }
    let ok = a
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    (!ok).then(|| format!("address {shown}: {expected}"))
}

/// [`address_problem`] as `INVALID_ARGUMENT`.
fn check_address(address: &str, ids: bool) -> Result<(), Status> {
    match address_problem(address, ids) {
        None => Ok(()),
        Some(why) => Err(Status::invalid_argument(why)),
    }
}

/// How a journal error from an administrative call is answered (see the
/// module documentation).
fn admin_error(state: &MasterState, e: JournalError) -> Status {
    match e {
        JournalError::NotPrimary { .. } | JournalError::Fenced { .. } | JournalError::Shutdown => {
            gate::journal_error(&*state.journal, e)
        }
        e @ JournalError::Corrupt { .. } => Status::internal(e.to_string()),
        e @ JournalError::InvalidEntry { .. } => Status::invalid_argument(e.to_string()),
        e => Status::failed_precondition(e.to_string()),
    }
}

fn handoff_error(state: &MasterState, e: HandoffError) -> Status {
    match e {
        HandoffError::NotFound { .. } => Status::not_found(e.to_string()),
        HandoffError::Journal(j) => admin_error(state, j),
        e => Status::failed_precondition(e.to_string()),
    }
}

/// The primary's view of the quorum, as `GetQuorumInfo` answers it.
pub fn quorum_info(state: &MasterState, members: &[MemberStatus]) -> QuorumInfo {
    let status = state.journal.status();
    let embedded = status.backend == "EMBEDDED";
    let kind = if embedded {
        "raft"
    } else if members.len() == 1 && members[0].id == "single" {
        "single"
    } else {
        "election"
    };
    let epoch = match *state.journal.role().borrow() {
        journal_core::Role::Primary { epoch } => epoch,
        journal_core::Role::Standby => status.epoch,
    };
    QuorumInfo {
        backend: status.backend.to_string(),
        kind: kind.to_string(),
        epoch,
        leader_applied: status.last_applied,
        primary_address: state.address.clone(),
        cluster_id: state.cluster_id.get().cloned().unwrap_or_default(),
        members: members
            .iter()
            .map(|m| {
                let (role, is_leader) = if embedded {
                    let role = if m.role == "LEARNER" {
                        "LEARNER"
                    } else {
                        "VOTER"
                    };
                    (role, m.role == "LEADER")
                } else {
                    ("CONTENDER", m.role == "PRIMARY")
                };
                QuorumMember {
                    id: m.id.clone(),
                    address: m.address.clone(),
                    rpc_address: m.rpc_address.clone().unwrap_or_default(),
                    role: role.to_string(),
                    is_leader,
                    has_applied: m.applied.is_some(),
                    applied: m.applied.unwrap_or_default(),
                }
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl JournalMaster for JournalService {
    async fn checkpoint(
        &self,
        request: Request<CheckpointRequest>,
    ) -> Result<Response<CheckpointResponse>, Status> {
        if !request.get_ref().any_master {
            gate::require_primary(&*self.state.journal)?;
        }
        let role = if self.state.journal.role().borrow().is_primary() {
            "PRIMARY"
        } else {
            "STANDBY"
        };
        let seq = self
            .state
            .journal
            .checkpoint()
            .await
            .map_err(|e| admin_error(&self.state, e))?;
        tracing::info!(seq, role, "checkpoint written on request");
        Ok(Response::new(CheckpointResponse {
            seq,
            address: self.state.address.clone(),
            role: role.to_string(),
        }))
    }

    async fn get_quorum_info(
        &self,
        _request: Request<GetQuorumInfoRequest>,
    ) -> Result<Response<QuorumInfo>, Status> {
        gate::require_primary(&*self.state.journal)?;
        Ok(Response::new(self.quorum().await?))
    }

    async fn transfer_leadership(
        &self,
        request: Request<TransferLeadershipRequest>,
    ) -> Result<Response<TransferLeadershipResponse>, Status> {
        gate::require_primary(&*self.state.journal)?;
        let name = request.into_inner().address;
        check_address(&name, true)?;
        let started = Instant::now();
        let members = self.members().await?;
        if members.len() == 1 && members[0].id == "single" {
            return Err(Status::failed_precondition(
                "this is a single UFS master (no ZooKeeper election): there is no other master \
                 to hand primacy to",
            ));
        }
        let target = handoff::find_member(&members, &name)
            .map_err(|e| handoff_error(&self.state, e))?
            .clone();
        let info = handoff::hand_to(&self.state, &target, handoff::SERVE_WAIT)
            .await
            .map_err(|e| handoff_error(&self.state, e))?;
        Ok(Response::new(TransferLeadershipResponse {
            primary_address: info.address,
            epoch: info.epoch,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }))
    }

    async fn add_quorum_member(
        &self,
        request: Request<QuorumMemberRequest>,
    ) -> Result<Response<QuorumInfo>, Status> {
        gate::require_primary(&*self.state.journal)?;
        self.embedded_only("quorum add")?;
        let address = request.into_inner().address.trim().to_string();
        check_address(&address, false)?;
        let members = self.members().await?;
        if let Some(m) = members
            .iter()
            .find(|m| m.address == address && m.role != "LEARNER")
        {
            tracing::info!(member = %m.id, %address, "quorum add: already a voter");
            return Ok(Response::new(quorum_info(&self.state, &members)));
        }
        let started = Instant::now();
        tracing::info!(%address, "quorum add: adding a member");
        self.state
            .journal
            .add_member("", &address)
            .await
            .map_err(|e| admin_error(&self.state, e))?;
        tracing::info!(
            %address,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "quorum add: the member caught up and votes"
        );
        Ok(Response::new(self.quorum().await?))
    }

    async fn remove_quorum_member(
        &self,
        request: Request<QuorumMemberRequest>,
    ) -> Result<Response<QuorumInfo>, Status> {
        gate::require_primary(&*self.state.journal)?;
        self.embedded_only("quorum remove")?;
        let name = request.into_inner().address;
        check_address(&name, true)?;
        let members = self.members().await?;
        let target = handoff::find_member(&members, &name)
            .map_err(|e| handoff_error(&self.state, e))?
            .clone();
        if target.role == "LEADER" {
            return Err(Status::failed_precondition(format!(
                "{name} is the primary (member {}): hand primacy to another member first \
                 (`primacy journal quorum elect --address <other>`), then remove it",
                target.id
            )));
        }
        tracing::info!(member = %target.id, address = %target.address, "quorum remove: removing a member");
        self.state
            .journal
            .remove_member(&target.id)
            .await
            .map_err(|e| admin_error(&self.state, e))?;
        tracing::info!(member = %target.id, "quorum remove: removed");
        Ok(Response::new(self.quorum().await?))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use parking_lot::RwLock;

    use super::*;
    use crate::meta::MetaMachine;
    use crate::rpc::testing::FakeJournal;

    fn service(journal: Arc<FakeJournal>) -> JournalService {
        let machine = Arc::new(RwLock::new(MetaMachine::default()));
        journal.set_machine(machine.clone());
        JournalService::new(MasterState::new(
            journal,
            machine,
            "self:19998".into(),
            Duration::from_secs(300),
        ))
    }

    fn member(address: &str) -> Request<QuorumMemberRequest> {
        Request::new(QuorumMemberRequest {
            address: address.into(),
        })
    }

    #[tokio::test]
    async fn a_standby_redirects_except_a_checkpoint_asked_of_it() {
        let svc = service(FakeJournal::standby(Some("m2:19998")));
        let e = svc
            .get_quorum_info(Request::new(GetQuorumInfoRequest {}))
            .await
            .expect_err("standby");
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert_eq!(
            e.metadata()
                .get(gate::PRIMARY_METADATA_KEY)
                .and_then(|v| v.to_str().ok()),
            Some("m2:19998")
        );
        let e = svc
            .checkpoint(Request::new(CheckpointRequest { any_master: false }))
            .await
            .expect_err("primary only");
        assert_eq!(e.code(), tonic::Code::Unavailable);
        let r = svc
            .checkpoint(Request::new(CheckpointRequest { any_master: true }))
            .await
            .expect("any master")
            .into_inner();
        assert_eq!(
            (r.role.as_str(), r.address.as_str()),
            ("STANDBY", "self:19998")
        );
    }

    #[tokio::test]
    async fn membership_changes_need_the_embedded_journal_and_unknown_members_are_not_found() {
        let svc = service(FakeJournal::primary());
        for r in [
            svc.add_quorum_member(member("h1:19200")).await,
            svc.remove_quorum_member(member("h1:19200")).await,
        ] {
            let e = r.expect_err("not embedded");
            assert_eq!(e.code(), tonic::Code::FailedPrecondition);
            assert!(
                e.message().contains("embedded journal only"),
                "{}",
                e.message()
            );
        }
        let e = svc
            .transfer_leadership(Request::new(TransferLeadershipRequest {
                address: "h9:1".into(),
            }))
            .await
            .expect_err("unknown");
        assert_eq!(e.code(), tonic::Code::NotFound, "{}", e.message());
        let e = svc
            .transfer_leadership(Request::new(TransferLeadershipRequest {
                address: "h9".into(),
            }))
            .await
            .expect_err("malformed");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
    }

    #[test]
    fn addresses_are_checked_before_anything_is_asked() {
        assert!(check_address("h1:19200", false).is_ok());
        assert!(check_address("12345", true).is_ok());
        assert!(check_address(&u64::MAX.to_string(), true).is_ok());
        for bad in [
            "", "h1", ":19200", "h1:0", "h1:99999", "h 1:2", "12345", "h\0:1",
        ] {
            let e = check_address(bad, false).expect_err(bad);
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}");
        }
        for bad in ["0", "18446744073709551616", " ", "h1"] {
            let e = check_address(bad, true).expect_err(bad);
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}");
        }
        // Huge input is refused with a message of bounded size (it travels
        // in an HTTP/2 header).
        for huge in ["9".repeat(1 << 20), "h".repeat(1 << 20) + ":1"] {
            let e = check_address(&huge, true).expect_err("huge");
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().len() < 400, "{} bytes", e.message().len());
        }
    }
}
