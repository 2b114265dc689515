//! `primacy format` + `primacy master` as real processes on a single-master
//! UFS journal: serving, validation, workers, SIGTERM and restart (also
//! from a checkpoint, and after kill -9), and the refusals that exit 2.

mod server_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use master::client::MasterClient;
use master::config::MasterConfig;
use master::meta::ErrorCode;
use master::proto::meta::{CreateFile, Mkdir};
use master::proto::rpc::worker_heartbeat_response::Command;
use master::proto::rpc::{
    mutate_request, MutateRequest, PathRequest, RegisterWorkerRequest, WorkerHeartbeatRequest,
};
use server_support::*;
use tonic::Code;

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    web_port: u16,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
            web_port: free_port(),
        }
    }

    fn folder(&self) -> String {
        format!("file://{}/journal", self.dir.path().display())
    }

    fn flags(&self, extra: &[(&str, String)]) -> Vec<String> {
        let mut pairs = vec![
            ("alluxio.master.journal.folder", self.folder()),
            ("alluxio.master.rpc.port", self.port.to_string()),
            ("alluxio.master.web.port", self.web_port.to_string()),
        ];
        pairs.extend(extra.iter().cloned());
        flags(&pairs)
    }

    fn cmd(&self, sub: &str, extra: &[(&str, String)]) -> Vec<String> {
        let mut args = vec![sub.to_string()];
        args.extend(self.flags(extra));
        args
    }

    fn format(&self, extra: &[(&str, String)]) {
        let (code, out, err) = run(&self.cmd("format", extra), self.dir.path());
        assert_eq!(code, 0, "format failed: {out}{err}");
        assert!(out.contains("Formatting UFS"), "{out}");
        assert!(out.trim_end().ends_with("done"), "{out}");
    }

    fn master(&self, name: &str, extra: &[(&str, String)]) -> Proc {
        Proc::spawn(&self.cmd("master", extra), &self.dir.path().join(name))
    }
}

fn mkdir(seq: u64, path: &str) -> MutateRequest {
    MutateRequest {
        client_id: Bytes::from_static(b"server-process-test"),
        request_seq: seq,
        op: Some(mutate_request::Op::Mkdir(Mkdir {
            path: path.to_string(),
            recursive: false,
        })),
    }
}

fn path(p: &str) -> PathRequest {
    PathRequest {
        path: p.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_then_master_serves_and_restarts_after_sigterm_with_its_files() {
    let s = Setup::new();
    s.format(&[]);
    let mut m = s.master("master-1.log", &[]);
    let info = wait_info(&mut m, s.port, BOUND, "PRIMARY", |i| i.role == "PRIMARY").await;
    assert!(info.epoch >= 1);
    assert_eq!(info.address, format!("localhost:{}", s.port));
    assert_eq!(info.primary_address, info.address);
    assert_eq!(
        info.journal.as_ref().map(|j| j.backend.as_str()),
        Some("UFS")
    );

    let mut fs = fs_client(s.port);
    let r = fs
        .mutate(mkdir(1, "/a"))
        .await
        .expect("mutate")
        .into_inner();
    assert!(r.is_ok(), "{r:?}");
    // A retry of the same request is applied once and gets the first result.
    let again = fs.mutate(mkdir(1, "/a")).await.expect("retry").into_inner();
    assert_eq!(again, r);
    // A refusal by the state machine is an OK response carrying the error.
    let r = fs
        .mutate(mkdir(2, "/a"))
        .await
        .expect("mutate")
        .into_inner();
    assert_eq!(r.code(), Some(ErrorCode::AlreadyExists));

    // An invalid path is INVALID_ARGUMENT and changes nothing.
    let before = fs.list_status(path("/")).await.expect("ls").into_inner();
    let e = fs.mutate(mkdir(3, "/a/../b")).await.expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("/a/../b"), "{}", e.message());
    let e = fs
        .mutate(MutateRequest {
            client_id: Bytes::from_static(b"c"),
            request_seq: 4,
            op: Some(mutate_request::Op::CreateFile(CreateFile {
                path: "no-slash".into(),
            })),
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    let after = fs.list_status(path("/")).await.expect("ls").into_inner();
    assert_eq!(before, after);

    // SIGTERM: exit 0 after closing the journal.
    m.term();
    let status = m.wait_exit(BOUND);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", m.stderr());
    let log = m.stderr();
    assert!(log.contains("gained primacy at epoch"), "{log}");
    assert!(log.contains("lost primacy"), "{log}");
    assert!(log.contains("journal shut down"), "{log}");

    // The next start replays the journal: /a is still there.
    let mut m = s.master("master-2.log", &[]);
    wait_info(&mut m, s.port, BOUND, "PRIMARY again", |i| {
        i.role == "PRIMARY"
    })
    .await;
    let r = fs_client(s.port)
        .get_status(path("/a"))
        .await
        .expect("stat")
        .into_inner();
    assert!(r.into_info().expect("/a survives a restart").is_directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_worker_is_lost_and_comes_back_by_registering() {
    let s = Setup::new();
    s.format(&[]);
    let timeout = [("alluxio.master.worker.timeout", "500ms".to_string())];
    let mut m = s.master("master.log", &timeout);
    wait_info(&mut m, s.port, BOUND, "PRIMARY", |i| i.role == "PRIMARY").await;
    let mut w = worker_client(s.port);
    let register = RegisterWorkerRequest {
        address: "127.0.0.1:29999".into(),
        capacity_bytes: 1 << 30,
        used_bytes: 0,
        block_ids: vec![11, 12],
    };
    let id = w
        .register_worker(register.clone())
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    let listed = info(s.port).await.expect("info");
    assert_eq!(listed.workers.len(), 1);
    assert_eq!(listed.workers[0].state, "LIVE");
    assert_eq!(listed.workers[0].block_count, 2);
    // No heartbeats: it is declared LOST after the timeout, and stays listed.
    wait_info(&mut m, s.port, BOUND, "the worker LOST", |i| {
        i.workers.len() == 1 && i.workers[0].state == "LOST"
    })
    .await;
    let hb = w
        .worker_heartbeat(WorkerHeartbeatRequest {
            worker_id: id,
            used_bytes: 0,
            block_ids: vec![11, 12],
        })
        .await
        .expect("heartbeat")
        .into_inner();
    assert_eq!(hb.command, Command::Register as i32);
    let id2 = w
        .register_worker(register)
        .await
        .expect("re-register")
        .into_inner()
        .worker_id;
    assert_ne!(id, id2);
    let listed = info(s.port).await.expect("info");
    assert_eq!(
        listed.workers.len(),
        1,
        "re-registration replaces the record"
    );
    assert_eq!(listed.workers[0].state, "LIVE");
    assert!(m.stderr().contains("worker lost"), "{}", m.stderr());
}

#[test]
fn master_refuses_to_start_with_exit_2_and_says_why() {
    let s = Setup::new();
    // Unformatted: the message names the fixing command.
    let (code, _, err) = run(&s.cmd("master", &[]), s.dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not formatted"), "{err}");
    assert!(
        err.contains("primacy format -D alluxio.master.journal.folder="),
        "{err}"
    );

    // Another cluster's journal.
    s.format(&[("alluxio.master.cluster.id", "cluster-one".into())]);
    let (code, _, err) = run(
        &s.cmd(
            "master",
            &[("alluxio.master.cluster.id", "cluster-two".into())],
        ),
        s.dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("belongs to another cluster"), "{err}");
    assert!(err.contains("primacy format --force"), "{err}");

    // A malformed value names key and value.
    let (code, _, err) = run(
        &s.cmd("master", &[("alluxio.master.rpc.port", "abc".into())]),
        s.dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("alluxio.master.rpc.port"), "{err}");
    assert!(err.contains("\"abc\""), "{err}");

    // A port in use, named.
    let busy = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let (code, _, err) = run(
        &s.cmd("master", &[("alluxio.master.rpc.port", port.to_string())]),
        s.dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("alluxio.master.rpc.port = {port}")),
        "{err}"
    );
    // The status port in use, named the same way (before the journal opens).
    let (code, _, err) = run(
        &s.cmd("master", &[("alluxio.master.web.port", port.to_string())]),
        s.dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("alluxio.master.web.port = {port}")),
        "{err}"
    );
    drop(busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_bytes_are_invalid_argument() {
    let s = Setup::new();
    s.format(&[]);
    let mut m = s.master("master.log", &[]);
    wait_info(&mut m, s.port, BOUND, "PRIMARY", |i| i.role == "PRIMARY").await;
    // A field 1 (client_id, bytes) announcing 100 bytes with 2 present.
    let garbage = Bytes::from_static(&[0x0a, 100, 1, 2]);
    let e = raw_call(s.port, "/primacy.rpc.FileSystemMaster/Mutate", garbage)
        .await
        .expect_err("malformed");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // Larger than the decoding limit: refused before decoding.
    let huge = Bytes::from(vec![0u8; master::rpc::MAX_REQUEST_BYTES + 1]);
    let e = raw_call(s.port, "/primacy.rpc.FileSystemMaster/Mutate", huge)
        .await
        .expect_err("too large");
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
}

/// Sends `body` as the request message of `method`, bypassing the typed
/// client, and decodes the answer as `FsResult`.
async fn raw_call(
    port: u16,
    method: &'static str,
    body: Bytes,
) -> Result<master::meta::FsResult, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel(port));
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(method),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// Encodes raw bytes; decodes with prost.
#[derive(Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Bytes;
    type Decode = master::meta::FsResult;
    type Encoder = RawEncoder;
    type Decoder = tonic_prost::ProstDecoder<master::meta::FsResult>;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstCodec::<master::meta::FsResult, master::meta::FsResult>::raw_decoder(
            tonic::codec::BufferSettings::default(),
        )
    }
}

struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

/// How [`restart_after_a_checkpoint`] stops the master.
enum Stop {
    Term,
    Kill9,
}

/// A single UFS master checkpointing every 50 entries: 220 files, a
/// checkpoint object under `<folder>/checkpoints/`, 30 files more (only in
/// the log after it); stopped with `stop` and started again, it lists every
/// file, restored from the checkpoint plus the log after it.
async fn restart_after_a_checkpoint(stop: Stop) {
    const BEFORE: usize = 220;
    const AFTER: usize = 30;
    let s = Setup::new();
    let period = [(
        "alluxio.master.journal.checkpoint.period.entries",
        "50".to_string(),
    )];
    s.format(&period);
    let mut m = s.master("master-1.log", &period);
    wait_info(&mut m, s.port, BOUND, "PRIMARY", |i| i.role == "PRIMARY").await;
    let mut pairs = retry_pairs();
    pairs.push((
        "alluxio.master.rpc.addresses",
        format!("localhost:{}", s.port),
    ));
    let client = MasterClient::from_config(&MasterConfig::from_pairs(&pairs).expect("config"))
        .expect("client");

    let mut expected = BTreeSet::new();
    let mut create = async |range: std::ops::Range<usize>| {
        for i in range {
            let dir = format!("/ckpt/d{}", i / 50);
            if i % 50 == 0 {
                client
                    .mkdir(&dir, true)
                    .await
                    .unwrap_or_else(|e| panic!("mkdir {dir}: {e}"));
                expected.insert(dir.clone());
            }
            let file = format!("{dir}/f{i}");
            client
                .create_file(&file)
                .await
                .unwrap_or_else(|e| panic!("create {file}: {e}"));
            expected.insert(file);
        }
    };
    create(0..BEFORE).await;

    let checkpoints = s.dir.path().join("journal").join("checkpoints");
    let deadline = Instant::now() + BOUND;
    let found = loop {
        let names: Vec<String> = std::fs::read_dir(&checkpoints)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !names.is_empty() {
            break names;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint under {} within {BOUND:?} after {BEFORE} files; stderr:\n{}",
            checkpoints.display(),
            m.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("checkpoints after {BEFORE} files: {found:?}");
    create(BEFORE..BEFORE + AFTER).await;
    assert_eq!(
        list_tree(&client, "/ckpt").await,
        expected,
        "before the stop"
    );

    match stop {
        Stop::Term => {
            m.term();
            let status = m.wait_exit(BOUND);
            assert_eq!(status.code(), Some(0), "stderr:\n{}", m.stderr());
        }
        Stop::Kill9 => {
            m.kill9();
        }
    }

    let mut m = s.master("master-2.log", &period);
    let started = Instant::now();
    wait_info(&mut m, s.port, BOUND, "PRIMARY again", |i| {
        i.role == "PRIMARY"
    })
    .await;
    eprintln!("restart -> PRIMARY: {} ms", started.elapsed().as_millis());
    let log = m.stderr();
    assert!(log.contains("state restored from checkpoint"), "{log}");
    let found = list_tree(&client, "/ckpt").await;
    let missing: Vec<&String> = expected.difference(&found).collect();
    assert!(
        missing.is_empty(),
        "{} of {} paths missing after the restart, first: {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(found, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restarted_after_a_checkpoint_has_every_file() {
    restart_after_a_checkpoint(Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_after_a_checkpoint_has_every_file_on_restart() {
    restart_after_a_checkpoint(Stop::Kill9).await;
}
