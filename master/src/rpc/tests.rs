//! The services called in-process over a scripted journal and a real
//! metadata machine: validation, the primary gate, results, workers, info.

use std::sync::Arc;
use std::time::Duration;

use journal_core::{JournalError, Role};
use tonic::{Code, Request};

use super::testing::FakeJournal;
use super::*;
use crate::meta::{Entry, ErrorCode};
use crate::proto::rpc::file_system_master_server::FileSystemMaster;
use crate::proto::rpc::meta_master_server::MetaMaster;
use crate::proto::rpc::worker_heartbeat_response::Command;
use crate::proto::rpc::worker_master_server::WorkerMaster;
use crate::proto::rpc::{
    mutate_request, GetMasterInfoRequest, MutateRequest, PathRequest, RegisterWorkerRequest,
    WorkerHeartbeatRequest,
};

fn master(journal: Arc<FakeJournal>) -> (Arc<MasterState>, fs::FsService) {
    let machine = Arc::new(RwLock::new(MetaMachine::default()));
    journal.set_machine(machine.clone());
    let state = MasterState::new(
        journal,
        machine,
        "self:19998".to_string(),
        Duration::from_secs(300),
    );
    (state.clone(), fs::FsService::new(state))
}

fn mutate(seq: u64, op: mutate_request::Op) -> Request<MutateRequest> {
    Request::new(MutateRequest {
        client_id: bytes::Bytes::from_static(b"client-1"),
        request_seq: seq,
        op: Some(op),
    })
}

fn mkdir(path: &str) -> mutate_request::Op {
    mutate_request::Op::Mkdir(crate::meta::proto::Mkdir {
        path: path.to_string(),
        recursive: false,
    })
}

fn primary_header(s: &tonic::Status) -> Option<String> {
    s.metadata()
        .get(PRIMARY_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn mutate_applies_and_reads_see_it() {
    let journal = FakeJournal::primary();
    let (_state, fs) = master(journal.clone());
    let r = fs
        .mutate(mutate(1, mkdir("/a")))
        .await
        .expect("ok")
        .into_inner();
    assert!(r.is_ok(), "{r:?}");
    let r = fs
        .get_status(Request::new(PathRequest { path: "/a".into() }))
        .await
        .expect("ok")
        .into_inner();
    assert!(r.into_info().expect("info").is_directory);
    // A refusal of the state machine is an OK response carrying the error.
    let r = fs
        .mutate(mutate(2, mkdir("/a")))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(r.code(), Some(ErrorCode::AlreadyExists));
    let r = fs
        .list_status(Request::new(PathRequest { path: "/".into() }))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(r.into_listing().expect("listing").len(), 1);
}

#[tokio::test]
async fn invalid_requests_are_invalid_argument_and_change_nothing() {
    let journal = FakeJournal::primary();
    let (state, fs) = master(journal.clone());
    let before = state.machine.read().canonical_dump();
    for (op, needle) in [
        (mkdir("relative"), "absolute"),
        (mkdir("/a//b"), "//"),
        (mkdir("/a/../b"), ".."),
        (
            mutate_request::Op::Rename(crate::meta::proto::Rename {
                src: "/ok".into(),
                dst: "/bad/".into(),
            }),
            "rename destination",
        ),
    ] {
        let e = fs.mutate(mutate(1, op)).await.expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains(needle), "{needle}: {}", e.message());
    }
    let mut no_client = mutate(1, mkdir("/x")).into_inner();
    no_client.client_id = bytes::Bytes::new();
    let e = fs
        .mutate(Request::new(no_client))
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut long_client = mutate(1, mkdir("/x")).into_inner();
    long_client.client_id = vec![7u8; 65].into();
    let e = fs
        .mutate(Request::new(long_client))
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut no_op = mutate(1, mkdir("/x")).into_inner();
    no_op.op = None;
    let e = fs.mutate(Request::new(no_op)).await.expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = fs
        .get_status(Request::new(PathRequest { path: "x/".into() }))
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(journal.proposals(), 0, "nothing was proposed");
    assert_eq!(journal.barrier_calls(), 0, "no barrier for a refused read");
    assert_eq!(state.machine.read().canonical_dump(), before);
}

#[tokio::test]
async fn a_standby_refuses_with_the_primary_address() {
    let journal = FakeJournal::standby(Some("m2:19998"));
    let (state, fs) = master(journal.clone());
    let e = fs
        .mutate(mutate(1, mkdir("/a")))
        .await
        .expect_err("standby");
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.message(), "not the primary; the primary is at m2:19998");
    assert_eq!(primary_header(&e).as_deref(), Some("m2:19998"));
    let e = fs
        .get_status(Request::new(PathRequest { path: "/".into() }))
        .await
        .expect_err("standby");
    assert_eq!(primary_header(&e).as_deref(), Some("m2:19998"));
    let workers = worker_svc::WorkerService::new(state.clone());
    let e = workers
        .register_worker(Request::new(RegisterWorkerRequest {
            address: "w:1".into(),
            ..Default::default()
        }))
        .await
        .expect_err("standby");
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(journal.proposals(), 0);
    // Every master answers GetMasterInfo.
    let info = info::InfoService::new(state)
        .get_master_info(Request::new(GetMasterInfoRequest {}))
        .await
        .expect("info")
        .into_inner();
    assert_eq!(info.role, "STANDBY");
    assert_eq!(info.primary_address, "m2:19998");
}

#[tokio::test]
async fn journal_errors_map_to_unavailable_with_the_redirect() {
    let journal = FakeJournal::standby(Some("m3:19998"));
    let s = gate::journal_error(
        &*journal,
        JournalError::NotPrimary {
            leader_hint: Some("m2:19998".into()),
        },
    );
    assert_eq!(s.code(), Code::Unavailable);
    assert_eq!(primary_header(&s).as_deref(), Some("m2:19998"));
    let s = gate::journal_error(&*journal, JournalError::Fenced { by_epoch: 9 });
    assert_eq!(primary_header(&s).as_deref(), Some("m3:19998"));
    let s = gate::journal_error(&*journal, JournalError::corrupt("logs/00ab", "bad crc"));
    assert_eq!(s.code(), Code::Internal);
    assert!(s.message().contains("logs/00ab"));
}

#[tokio::test]
async fn workers_register_heartbeat_and_show_in_master_info() {
    let journal = FakeJournal::primary();
    let (state, _fs) = master(journal.clone());
    let svc = worker_svc::WorkerService::new(state.clone());
    let id = svc
        .register_worker(Request::new(RegisterWorkerRequest {
            address: "w1:29999".into(),
            capacity_bytes: 100,
            used_bytes: 1,
            block_ids: vec![1, 2],
        }))
        .await
        .expect("registered")
        .into_inner()
        .worker_id;
    let hb = |worker_id| WorkerHeartbeatRequest {
        worker_id,
        used_bytes: 2,
        block_ids: vec![1, 2, 3],
    };
    let cmd = svc
        .worker_heartbeat(Request::new(hb(id)))
        .await
        .expect("hb")
        .into_inner()
        .command;
    assert_eq!(cmd, Command::Nothing as i32);
    let cmd = svc
        .worker_heartbeat(Request::new(hb(id + 100)))
        .await
        .expect("hb")
        .into_inner()
        .command;
    assert_eq!(cmd, Command::Register as i32);
    let info = info::master_info(&state);
    assert_eq!(info.role, "PRIMARY");
    assert_eq!(info.epoch, 1);
    assert_eq!(info.primary_address, "self:19998");
    assert_eq!(info.workers.len(), 1);
    assert_eq!(info.workers[0].state, "LIVE");
    assert_eq!(info.workers[0].block_count, 3);
    // Demoted: the worker calls are refused and the info lists no workers.
    journal.set_role(Role::Standby, Some("m2:19998"));
    let e = svc
        .worker_heartbeat(Request::new(hb(id)))
        .await
        .expect_err("standby");
    assert_eq!(e.code(), Code::Unavailable);
    assert!(info::master_info(&state).workers.is_empty());
}

#[test]
fn entries_are_stamped_with_non_decreasing_times() {
    let journal = FakeJournal::primary();
    let (state, _fs) = master(journal);
    let a = state.stamp_time();
    let b = state.stamp_time();
    assert!(b >= a);
    // The machine's log time is a floor: an entry far in the future raises it.
    let future = a + 3_600_000;
    let entry = crate::meta::encode_entry(b"c", 1, future, Entry::mkdir("/t", false));
    let _ = state.machine.write().apply_entry(&entry);
    assert!(state.stamp_time() >= future);
}
