//! A fake master for the client tests: the three gRPC services of
//! `rpc.proto`, served on a loopback port, with a real metadata state machine
//! behind `Mutate` (so refusals and exactly-once are the real ones) and knobs
//! for the behaviours a client must survive: standby redirects, a primary
//! that applies and then fails to answer, worker re-registration.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use master::meta::{encode_entry, FsResult, MetaMachine, Op as EntryOp};
use master::proto::rpc::file_system_master_server::{FileSystemMaster, FileSystemMasterServer};
use master::proto::rpc::meta_master_server::{MetaMaster, MetaMasterServer};
use master::proto::rpc::mutate_request::Op;
use master::proto::rpc::worker_heartbeat_response::Command;
use master::proto::rpc::worker_master_server::{WorkerMaster, WorkerMasterServer};
use master::proto::rpc::{
    GetMasterInfoRequest, MasterInfo, MutateRequest, PathRequest, RegisterWorkerRequest,
    RegisterWorkerResponse, WorkerHeartbeatRequest, WorkerHeartbeatResponse,
};
use tokio::sync::{oneshot, watch, Notify};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// What the fake is right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Serves every call.
    Primary,
    /// Answers UNAVAILABLE, naming this primary (if any) in `primacy-primary`.
    Standby(Option<String>),
}

/// The fake's state; tests read and change it while it serves.
pub struct State {
    pub address: String,
    pub role: Mutex<Role>,
    pub epoch: AtomicU64,
    /// GetMasterInfo answers PRIMARY even when `role` is a standby (a deposed
    /// primary that has not noticed yet).
    pub claims_primary: AtomicBool,
    pub machine: Mutex<MetaMachine>,
    /// Every Mutate received: (client id, request seq).
    pub mutations: Mutex<Vec<(Vec<u8>, u64)>>,
    /// The next N Mutates are applied, then answered UNAVAILABLE (no hint),
    /// as a primary whose answer was lost.
    pub fail_after_apply: AtomicU32,
    /// The next N Mutates are applied, then the handler signals `stalled`
    /// and waits for `release` (the test cuts the connection meanwhile).
    pub stall_after_apply: AtomicU32,
    pub stalled: Notify,
    pub release: watch::Sender<bool>,
    pub registrations: Mutex<Vec<RegisterWorkerRequest>>,
    pub heartbeats: Mutex<Vec<WorkerHeartbeatRequest>>,
    /// The next heartbeat is answered REGISTER (and the worker forgotten).
    pub ask_register: AtomicBool,
    known_workers: Mutex<HashSet<u64>>,
    next_worker_id: AtomicU64,
    pub calls: AtomicU64,
}

impl State {
    pub fn set_role(&self, role: Role) {
        *self.role.lock().unwrap() = role;
    }

    fn gate(&self) -> Result<(), Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match &*self.role.lock().unwrap() {
            Role::Primary => Ok(()),
            Role::Standby(hint) => {
                let mut st = Status::unavailable("not the primary (fake)");
                if let Some(h) = hint {
                    st.metadata_mut()
                        .insert("primacy-primary", h.parse().unwrap());
                }
                Err(st)
            }
        }
    }

    pub fn mutation_ids(&self) -> Vec<(Vec<u8>, u64)> {
        self.mutations.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Svc(Arc<State>);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn entry_op(op: Op) -> EntryOp {
    match op {
        Op::Mkdir(m) => EntryOp::Mkdir(m),
        Op::CreateFile(c) => EntryOp::CreateFile(c),
        Op::CompleteFile(c) => EntryOp::CompleteFile(c),
        Op::Delete(d) => EntryOp::Delete(d),
        Op::Rename(r) => EntryOp::Rename(r),
    }
}

#[tonic::async_trait]
impl FileSystemMaster for Svc {
    async fn mutate(&self, req: Request<MutateRequest>) -> Result<Response<FsResult>, Status> {
        self.0.gate()?;
        let req = req.into_inner();
        self.0
            .mutations
            .lock()
            .unwrap()
            .push((req.client_id.to_vec(), req.request_seq));
        let Some(op) = req.op else {
            return Err(Status::invalid_argument("no operation"));
        };
        let entry = encode_entry(&req.client_id, req.request_seq, now_ms(), entry_op(op));
        let result = self.0.machine.lock().unwrap().apply_entry(&entry);
        if take_one(&self.0.fail_after_apply) {
            return Err(Status::unavailable(
                "applied, but the answer was lost (fake)",
            ));
        }
        if take_one(&self.0.stall_after_apply) {
            let mut rx = self.0.release.subscribe();
            self.0.stalled.notify_one();
            let _ = rx.wait_for(|r| *r).await;
        }
        Ok(Response::new(result))
    }

    async fn get_status(&self, req: Request<PathRequest>) -> Result<Response<FsResult>, Status> {
        self.0.gate()?;
        let r = self
            .0
            .machine
            .lock()
            .unwrap()
            .get_status(&req.into_inner().path);
        Ok(Response::new(r.into()))
    }

    async fn list_status(&self, req: Request<PathRequest>) -> Result<Response<FsResult>, Status> {
        self.0.gate()?;
        let r = self
            .0
            .machine
            .lock()
            .unwrap()
            .list_status(&req.into_inner().path);
        Ok(Response::new(match r {
            Ok(l) => FsResult::listing(l),
            Err(e) => FsResult::error(e),
        }))
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[tonic::async_trait]
impl WorkerMaster for Svc {
    async fn register_worker(
        &self,
        req: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        self.0.gate()?;
        let id = self.0.next_worker_id.fetch_add(1, Ordering::SeqCst);
        self.0.known_workers.lock().unwrap().insert(id);
        self.0.registrations.lock().unwrap().push(req.into_inner());
        Ok(Response::new(RegisterWorkerResponse { worker_id: id }))
    }

    async fn worker_heartbeat(
        &self,
        req: Request<WorkerHeartbeatRequest>,
    ) -> Result<Response<WorkerHeartbeatResponse>, Status> {
        self.0.gate()?;
        let req = req.into_inner();
        let id = req.worker_id;
        self.0.heartbeats.lock().unwrap().push(req);
        let forget = self.0.ask_register.swap(false, Ordering::SeqCst);
        let mut known = self.0.known_workers.lock().unwrap();
        if forget {
            known.remove(&id);
        }
        let command = if known.contains(&id) {
            Command::Nothing
        } else {
            Command::Register
        };
        Ok(Response::new(WorkerHeartbeatResponse {
            command: command as i32,
        }))
    }
}

#[tonic::async_trait]
impl MetaMaster for Svc {
    async fn get_master_info(
        &self,
        _req: Request<GetMasterInfoRequest>,
    ) -> Result<Response<MasterInfo>, Status> {
        let role = self.0.role.lock().unwrap().clone();
        let claims = self.0.claims_primary.load(Ordering::SeqCst);
        let (role, primary) = match role {
            Role::Primary => ("PRIMARY", self.0.address.clone()),
            Role::Standby(_) if claims => ("PRIMARY", self.0.address.clone()),
            Role::Standby(h) => ("STANDBY", h.unwrap_or_default()),
        };
        Ok(Response::new(MasterInfo {
            address: self.0.address.clone(),
            role: role.into(),
            epoch: self.0.epoch.load(Ordering::SeqCst),
            primary_address: primary,
            ..Default::default()
        }))
    }

    async fn get_cluster_info(
        &self,
        _req: Request<master::proto::rpc::GetClusterInfoRequest>,
    ) -> Result<Response<master::proto::rpc::ClusterInfo>, Status> {
        Err(Status::unimplemented("the fake master has no cluster view"))
    }
}

/// A running fake; stops when dropped.
pub struct FakeMaster {
    pub state: Arc<State>,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeMaster {
    /// Starts a fake on a free loopback port (needs a Tokio runtime).
    pub async fn start(role: Role) -> FakeMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (release, _) = watch::channel(false);
        let state = Arc::new(State {
            address: addr.to_string(),
            role: Mutex::new(role),
            epoch: AtomicU64::new(1),
            claims_primary: AtomicBool::new(false),
            machine: Mutex::new(MetaMachine::default()),
            mutations: Mutex::new(Vec::new()),
            fail_after_apply: AtomicU32::new(0),
            stall_after_apply: AtomicU32::new(0),
            stalled: Notify::new(),
            release,
            registrations: Mutex::new(Vec::new()),
            heartbeats: Mutex::new(Vec::new()),
            ask_register: AtomicBool::new(false),
            known_workers: Mutex::new(HashSet::new()),
            next_worker_id: AtomicU64::new(1),
            calls: AtomicU64::new(0),
        });
        let svc = Svc(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(FileSystemMasterServer::new(svc.clone()))
                .add_service(WorkerMasterServer::new(svc.clone()))
                .add_service(MetaMasterServer::new(svc))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeMaster {
            state,
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

/// A loopback address nothing listens on (bound, then released).
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

/// Client options with short retries, for tests.
pub fn quick_options(max: Duration) -> master::client::ClientOptions {
    master::client::ClientOptions {
        retry: master::config::RetrySettings {
            max_duration: max,
            base_sleep: Duration::from_millis(10),
            max_sleep: Duration::from_millis(100),
        },
        connect_timeout: Duration::from_secs(2),
        credentials: Default::default(),
    }
}
