//! The master's gRPC handlers, fed requests decoded from fuzz bytes the way
//! tonic decodes them (prost), on a primary whose journal applies in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use journal_core::{JournalStatus, JournalSystem, MemberStatus, Result, Role, StateMachine};
use master::meta::{ErrorCode, FsResult, MetaMachine};
use master::proto::rpc::file_system_master_server::FileSystemMaster;
use master::proto::rpc::journal_master_server::JournalMaster;
use master::proto::rpc::worker_master_server::WorkerMaster;
use master::proto::rpc::{
    CheckpointRequest, GetQuorumInfoRequest, MutateRequest, PathRequest, QuorumMemberRequest,
    RegisterWorkerRequest, WorkerHeartbeatRequest,
};
use master::rpc::fs::FsService;
use master::rpc::journal_svc::JournalService;
use master::rpc::worker_svc::WorkerService;
use master::rpc::MasterState;
use parking_lot::RwLock;
use prost::Message;
use tokio::sync::watch;
use tonic::{Code, Request, Response, Status};

use crate::records;

/// Which handler a record goes to: its first byte, modulo the count.
pub const METHODS: &[&str] = &[
    "Mutate",
    "GetStatus",
    "ListStatus",
    "RegisterWorker",
    "WorkerHeartbeat",
    "Checkpoint",
    "GetQuorumInfo",
    "AddQuorumMember",
    "RemoveQuorumMember",
];

/// The index of `method` in [`METHODS`] (seed writing).
pub fn method_tag(method: &str) -> u8 {
    METHODS
        .iter()
        .position(|m| *m == method)
        .expect("a known method") as u8
}

/// A primary's journal that applies every proposal at once, in memory, and
/// knows three embedded-journal members (so the membership handlers run).
struct InMemoryJournal {
    role: watch::Sender<Role>,
    machine: Arc<RwLock<MetaMachine>>,
    seq: AtomicU64,
}

#[async_trait]
impl JournalSystem for InMemoryJournal {
    fn role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    async fn propose(&self, entry: Bytes) -> Result<Bytes> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(self.machine.write().apply(seq, &entry))
    }

    async fn read_barrier(&self) -> Result<()> {
        Ok(())
    }

    async fn checkpoint(&self) -> Result<u64> {
        Ok(self.seq.load(Ordering::SeqCst) + 1)
    }

    fn status(&self) -> JournalStatus {
        let member = |n: u64, role: &str| MemberStatus {
            id: n.to_string(),
            address: format!("127.0.0.1:1920{n}"),
            rpc_address: Some(format!("127.0.0.1:1999{n}")),
            role: role.to_string(),
            applied: Some(self.seq.load(Ordering::SeqCst)),
        };
        JournalStatus {
            backend: "EMBEDDED",
            role: *self.role.borrow(),
            epoch: 1,
            last_applied: self.seq.load(Ordering::SeqCst),
            last_durable: self.seq.load(Ordering::SeqCst),
            last_checkpoint: None,
            leader_address: Some("127.0.0.1:19201".into()),
            members: vec![
                member(1, "LEADER"),
                member(2, "FOLLOWER"),
                member(3, "FOLLOWER"),
            ],
            location: "memory".into(),
        }
    }

    async fn add_member(&self, _id: &str, _address: &str) -> Result<()> {
        Ok(())
    }

    async fn remove_member(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    async fn shutdown(&self) {}
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Sends each record of `data` ([`records::split`]: a method byte, then the
/// request's protobuf bytes) to its handler on one fresh primary.
///
/// Contract: a request that does not decode is refused by tonic before any
/// handler (nothing to check); a decoded one is answered or refused with
/// INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION, never INTERNAL,
/// UNKNOWN or a panic; a refused mutation changed nothing; an accepted
/// request never makes the state machine answer INVALID_PATH,
/// MALFORMED_ENTRY or INTERNAL (validation before proposing covers what
/// apply would refuse as malformed).
pub fn target(data: &[u8]) {
    let machine = Arc::new(RwLock::new(MetaMachine::default()));
    let journal = Arc::new(InMemoryJournal {
        role: watch::channel(Role::Primary { epoch: 1 }).0,
        machine: machine.clone(),
        seq: AtomicU64::new(0),
    });
    let state = MasterState::new(
        journal,
        machine.clone(),
        "127.0.0.1:19991".into(),
        Duration::from_secs(30),
    );
    let fs = FsService::new(state.clone());
    let workers = WorkerService::new(state.clone());
    let admin = JournalService::new(state);
    runtime().block_on(async {
        for record in records::split(data) {
            let Some((&tag, body)) = record.split_first() else {
                continue;
            };
            let method = METHODS[usize::from(tag) % METHODS.len()];
            match method {
                "Mutate" => {
                    let Ok(req) = MutateRequest::decode(body) else {
                        continue;
                    };
                    let before = machine.read().canonical_dump();
                    let answer = fs.mutate(Request::new(req)).await;
                    if answer.is_err() {
                        assert_eq!(
                            machine.read().canonical_dump(),
                            before,
                            "a refused mutation changed the state"
                        );
                    }
                    check_fs(method, answer);
                }
                "GetStatus" | "ListStatus" => {
                    let Ok(req) = PathRequest::decode(body) else {
                        continue;
                    };
                    let answer = if method == "GetStatus" {
                        fs.get_status(Request::new(req)).await
                    } else {
                        fs.list_status(Request::new(req)).await
                    };
                    check_fs(method, answer);
                }
                "RegisterWorker" => {
                    let Ok(req) = RegisterWorkerRequest::decode(body) else {
                        continue;
                    };
                    check(method, workers.register_worker(Request::new(req)).await);
                }
                "WorkerHeartbeat" => {
                    let Ok(req) = WorkerHeartbeatRequest::decode(body) else {
                        continue;
                    };
                    check(method, workers.worker_heartbeat(Request::new(req)).await);
                }
                "Checkpoint" => {
                    let Ok(req) = CheckpointRequest::decode(body) else {
                        continue;
                    };
                    check(method, admin.checkpoint(Request::new(req)).await);
                }
                "GetQuorumInfo" => {
                    let Ok(req) = GetQuorumInfoRequest::decode(body) else {
                        continue;
                    };
                    check(method, admin.get_quorum_info(Request::new(req)).await);
                }
                "AddQuorumMember" => {
                    let Ok(req) = QuorumMemberRequest::decode(body) else {
                        continue;
                    };
                    check(method, admin.add_quorum_member(Request::new(req)).await);
                }
                "RemoveQuorumMember" => {
                    let Ok(req) = QuorumMemberRequest::decode(body) else {
                        continue;
                    };
                    check(method, admin.remove_quorum_member(Request::new(req)).await);
                }
                other => unreachable!("method {other}"),
            }
        }
    });
}

fn check<T>(method: &str, answer: std::result::Result<Response<T>, Status>) -> Option<T> {
    match answer {
        Ok(r) => Some(r.into_inner()),
        Err(s) => {
            assert!(
                matches!(
                    s.code(),
                    Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition
                ),
                "{method} refused with {:?}: {}",
                s.code(),
                s.message()
            );
            assert!(
                s.message().len() <= 4096,
                "{method}: a status message of {} bytes",
                s.message().len()
            );
            None
        }
    }
}

fn check_fs(method: &str, answer: std::result::Result<Response<FsResult>, Status>) {
    if let Some(result) = check(method, answer) {
        if let Some(code) = result.code() {
            assert!(
                !matches!(
                    code,
                    ErrorCode::InvalidPath | ErrorCode::MalformedEntry | ErrorCode::Internal
                ),
                "{method} passed validation, then the machine answered {code:?}: {:?}",
                result.err()
            );
        }
    }
}
