//! Writes the seed corpus, `corpus/<target>/`, with the project's own
//! encoders and writers: real chunks, FORMAT markers, checkpoints, raft-engine
//! log files, peer messages, requests and property files.
//!
//! `cargo run --bin fuzz-seed -- <corpus dir>` (the directory is replaced
//! file by file; the seeds are deterministic except where the writers stamp
//! the time, so rerunning only changes those files).

use std::path::PathBuf;

use bytes::Bytes;
use journal_core::framing::encode_frame;
use journal_core::proto::{journal_record::Kind, JournalRecord, Primacy};
use journal_core::snapshot::{write_snapshot, SnapshotMeta};
use journal_core::StateMachine;
use journal_raft::proto::{MessageBatch, SnapshotChunk};
use journal_raft::storage::{encode_peers, Peer, Peers, RaftStorage};
use journal_raft::{FormatMode, RaftJournalConfig};
use journal_ufs::chunk::encode_chunk;
use journal_ufs::proto::ChunkHeader;
use master::meta::{Entry, MetaMachine};
use master::proto::rpc::{
    mutate_request, CheckpointRequest, GetQuorumInfoRequest, MutateRequest, PathRequest,
    QuorumMemberRequest, RegisterWorkerRequest, WorkerHeartbeatRequest,
};
use primacy_fuzz::records;
use primacy_fuzz::targets::{meta_apply, raft_peer, rpc_request, ufs_chunk};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry as RaftEntry, Message, MessageType, Snapshot};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let mut w = Writer { root };
    frames(&mut w)?;
    chunks(&mut w)?;
    ufs_format(&mut w)?;
    raft_format(&mut w)?;
    snapshots(&mut w)?;
    meta(&mut w)?;
    requests(&mut w)?;
    peers(&mut w)?;
    raft_storage(&mut w)?;
    properties(&mut w)?;
    Ok(())
}

struct Writer {
    root: PathBuf,
}

impl Writer {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        assert!(primacy_fuzz::target(target).is_some(), "no target {target}");
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)
    }
}

fn record(seq: u64, epoch: u64, kind: Kind) -> JournalRecord {
    JournalRecord {
        seq,
        epoch,
        kind: Some(kind),
    }
}

fn claim(seq: u64, epoch: u64) -> JournalRecord {
    record(
        seq,
        epoch,
        Kind::Primacy(Primacy {
            epoch,
            address: "m1:19998".into(),
            election_epoch: epoch,
        }),
    )
}

fn frames(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for p in [&b"first"[..], b"", &[0u8; 40][..]] {
        encode_frame(p, &mut out)?;
    }
    w.put("frame", "three-frames", &out)?;
    let mut rec = Vec::new();
    journal_core::framing::encode_message(&claim(1, 1), &mut rec)?;
    w.put("frame", "claim-record", &rec)?;
    w.put("frame", "torn", &out[..out.len() - 5])?;
    Ok(())
}

fn chunks(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    let header = |count: u32| ChunkHeader {
        cluster_id: ufs_chunk::CLUSTER.into(),
        first_seq: ufs_chunk::FIRST_SEQ,
        epoch: 3,
        count,
        writer_id: "6f1c2b7e".into(),
    };
    let entries = meta_apply::sample_entries();
    let records: Vec<JournalRecord> = entries
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, e)| record(ufs_chunk::FIRST_SEQ + i as u64, 3, Kind::Entry(e.clone())))
        .collect();
    w.put("ufs_chunk", "entries", &encode_chunk(&header(3), &records)?)?;
    w.put(
        "ufs_chunk",
        "claim",
        &encode_chunk(&header(1), &[claim(ufs_chunk::FIRST_SEQ, 3)])?,
    )?;
    Ok(())
}

fn ufs_format(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("file://{}", dir.path().display());
    let folder = journal_ufs::open_folder(&url, true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(journal_ufs::format(&folder, "fuzz-cluster"))?;
    w.put(
        "ufs_format",
        "FORMAT",
        &std::fs::read(dir.path().join("FORMAT"))?,
    )?;
    Ok(())
}

fn raft_format(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    for (name, mode) in [
        ("FORMAT-new", FormatMode::NewCluster),
        ("FORMAT-join", FormatMode::Join),
    ] {
        let dir = tempfile::tempdir()?;
        let addresses = vec!["m1:19200".to_string(), "m2:19200".into(), "m3:19200".into()];
        let cfg = RaftJournalConfig::new("m1:19200", addresses, dir.path());
        journal_raft::format::write_marker(&cfg, mode)?;
        w.put(
            "raft_format",
            name,
            &std::fs::read(dir.path().join("FORMAT"))?,
        )?;
    }
    Ok(())
}

fn snapshots(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    let meta = SnapshotMeta {
        cluster_id: "fuzz-cluster".into(),
        next_seq: 9,
        epoch: 3,
    };
    let full = meta_apply::populated();
    for (name, machine, frame) in [
        ("checkpoint-small-frames", &full, 64),
        ("checkpoint", &full, 1 << 20),
        (
            "checkpoint-empty-namespace",
            &MetaMachine::default(),
            1 << 20,
        ),
    ] {
        let mut out = Vec::new();
        write_snapshot(machine, &meta, &mut out, frame)?;
        w.put("snapshot_stream", name, &out)?;
    }
    Ok(())
}

fn meta(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    let mut body = Vec::new();
    meta_apply::populated().snapshot(&mut body)?;
    w.put("meta_restore", "namespace", &body)?;
    let mut empty = Vec::new();
    MetaMachine::default().snapshot(&mut empty)?;
    w.put("meta_restore", "empty", &empty)?;
    let entries = meta_apply::sample_entries();
    w.put("meta_apply", "history", &records::join(&entries))?;
    w.put("meta_apply", "one-mkdir", &records::join(&entries[..1]))?;
    Ok(())
}

fn request(method: &str, msg: &impl prost::Message) -> Vec<u8> {
    let mut r = vec![rpc_request::method_tag(method)];
    r.extend_from_slice(&msg.encode_to_vec());
    r
}

fn requests(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    let mutate = |seq: u64, op: mutate_request::Op| MutateRequest {
        client_id: Bytes::from_static(b"fuzz-client-0002"),
        request_seq: seq,
        op: Some(op),
    };
    use master::meta::Op;
    let op = |o: Op| match o {
        Op::Mkdir(m) => mutate_request::Op::Mkdir(m),
        Op::CreateFile(c) => mutate_request::Op::CreateFile(c),
        Op::CompleteFile(c) => mutate_request::Op::CompleteFile(c),
        Op::Delete(d) => mutate_request::Op::Delete(d),
        Op::Rename(r) => mutate_request::Op::Rename(r),
    };
    let fs = vec![
        request("Mutate", &mutate(1, op(Entry::mkdir("/d/e", true)))),
        request("Mutate", &mutate(2, op(Entry::create_file("/d/e/f")))),
        request(
            "Mutate",
            &mutate(3, op(Entry::complete_file("/d/e/f", &[(7, 10)]))),
        ),
        request(
            "GetStatus",
            &PathRequest {
                path: "/d/e/f".into(),
            },
        ),
        request("ListStatus", &PathRequest { path: "/d".into() }),
        request("Mutate", &mutate(4, op(Entry::rename("/d/e", "/g")))),
        request("Mutate", &mutate(5, op(Entry::delete("/g", true)))),
    ];
    w.put("rpc_request", "fs", &records::join(&fs))?;
    let workers = vec![
        request(
            "RegisterWorker",
            &RegisterWorkerRequest {
                address: "w1:29999".into(),
                capacity_bytes: 1 << 30,
                used_bytes: 10,
                block_ids: vec![7, 8],
            },
        ),
        request(
            "WorkerHeartbeat",
            &WorkerHeartbeatRequest {
                worker_id: 1,
                used_bytes: 20,
                block_ids: vec![7],
            },
        ),
    ];
    w.put("rpc_request", "workers", &records::join(&workers))?;
    let admin = vec![
        request("Checkpoint", &CheckpointRequest { any_master: true }),
        request("GetQuorumInfo", &GetQuorumInfoRequest {}),
        request(
            "AddQuorumMember",
            &QuorumMemberRequest {
                address: "m4:19200".into(),
            },
        ),
        request(
            "RemoveQuorumMember",
            &QuorumMemberRequest {
                address: "2".into(),
            },
        ),
    ];
    w.put("rpc_request", "journal-admin", &records::join(&admin))?;
    Ok(())
}

fn msg(t: MessageType, from: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = raft_peer::ME;
    m.term = term;
    m
}

fn batch(from: u64, messages: &[Message]) -> Result<Vec<u8>, protobuf::ProtobufError> {
    let mut encoded = Vec::new();
    for m in messages {
        encoded.push(Bytes::from(m.write_to_bytes()?));
    }
    let b = MessageBatch {
        from,
        messages: encoded,
        cluster_id: "fuzz-cluster".into(),
        membership: 42,
        address: format!("m{from}:19200"),
    };
    let mut r = vec![0u8];
    r.extend_from_slice(&b.encode_to_vec());
    Ok(r)
}

fn peers(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    // A follower hears from leader 2 of term 2, then a candidate of term 3.
    let mut heartbeat = msg(MessageType::MsgHeartbeat, 2, 2);
    heartbeat.commit = 3;
    let mut append = msg(MessageType::MsgAppend, 2, 2);
    append.index = 5;
    append.log_term = 2;
    append.commit = 6;
    append.entries = (6..8)
        .map(|i| RaftEntry {
            index: i,
            term: 2,
            data: vec![1, 2, 3].into(),
            ..Default::default()
        })
        .collect();
    let mut vote = msg(MessageType::MsgRequestVote, 3, 3);
    vote.index = 7;
    vote.log_term = 2;
    let mut prevote = msg(MessageType::MsgRequestPreVote, 3, 4);
    prevote.index = 7;
    prevote.log_term = 2;
    let follower = [batch(2, &[heartbeat, append])?, batch(3, &[prevote, vote])?];
    let mut input = vec![0u8];
    input.extend_from_slice(&records::join(&follower));
    w.put("raft_peer", "follower", &input)?;

    // The leader of term 3 hears acknowledgements and a forwarded read.
    let mut ack = msg(MessageType::MsgAppendResponse, 2, 3);
    ack.index = 6;
    let mut reject = msg(MessageType::MsgAppendResponse, 3, 3);
    reject.reject = true;
    reject.index = 6;
    reject.reject_hint = 4;
    reject.log_term = 2;
    let beat = msg(MessageType::MsgHeartbeatResponse, 3, 3);
    let mut read = msg(MessageType::MsgReadIndex, 2, 3);
    read.entries = vec![RaftEntry {
        data: b"read-1".to_vec().into(),
        ..Default::default()
    }]
    .into();
    let leader = [batch(2, &[ack, read])?, batch(3, &[reject, beat])?];
    let mut input = vec![1u8];
    input.extend_from_slice(&records::join(&leader));
    w.put("raft_peer", "leader", &input)?;

    // The head of a snapshot stream from the leader of term 3.
    let mut snap = msg(MessageType::MsgSnapshot, 2, 3);
    let mut s = Snapshot::default();
    s.mut_metadata().index = 20;
    s.mut_metadata().term = 3;
    s.mut_metadata()
        .set_conf_state(ConfState::from((raft_peer::MEMBERS.to_vec(), vec![])));
    snap.set_snapshot(s);
    let chunk = SnapshotChunk {
        from: 2,
        message: Bytes::from(snap.write_to_bytes()?),
        data: Bytes::new(),
        last: false,
        total: 4096,
        cluster_id: "fuzz-cluster".into(),
        membership: 42,
        address: "m2:19200".into(),
    };
    let mut r = vec![1u8];
    r.extend_from_slice(&chunk.encode_to_vec());
    let mut input = vec![0u8];
    input.extend_from_slice(&records::join([r]));
    w.put("raft_peer", "snapshot-head", &input)?;
    Ok(())
}

fn raft_storage(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut peers = Peers::new();
    for i in 1..=3u64 {
        peers.insert(
            i,
            Peer::with_rpc(format!("m{i}:19200"), Some(&format!("m{i}:19998"))),
        );
    }
    {
        let mut storage = RaftStorage::open(dir.path(), Some(&peers))?;
        let entries: Vec<RaftEntry> = (1..=4)
            .map(|i| RaftEntry {
                index: i,
                term: 1,
                data: vec![i as u8; 16].into(),
                ..Default::default()
            })
            .collect();
        storage.persist(&entries, None, true)?;
    }
    let log = journal_raft::storage::newest_log_file(&journal_raft::storage::log_dir(dir.path()))?
        .ok_or("raft-engine wrote no log file")?;
    let bytes = std::fs::read(&log)?;
    // The file is preallocated: the seed keeps the batches and a little of the zero tail.
    let end = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map(|p| p + 1)
        .unwrap_or(0);
    w.put(
        "raft_storage",
        "log-file",
        &bytes[..(end + 64).min(bytes.len())],
    )?;
    w.put("raft_storage", "peers", &encode_peers(&peers))?;
    Ok(())
}

fn properties(w: &mut Writer) -> Result<(), Box<dyn std::error::Error>> {
    w.put(
        "properties",
        "alluxio-site.properties",
        b"# three masters on the embedded journal\n\
alluxio.master.hostname=m1\n\
alluxio.master.embedded.journal.addresses=m1:19200,m2:19200,m3:19200\n\
alluxio.master.journal.type=EMBEDDED\n\
alluxio.work.dir : /var/primacy\n\
alluxio.master.journal.folder ${alluxio.work.dir}/journal\n\
alluxio.master.rpc.port=19998\n",
    )?;
    w.put(
        "properties",
        "escapes",
        b"! continuation and escapes\n\
alluxio.zookeeper.address = z1:2181,\\\n    z2:2181\n\
alluxio.zookeeper.enabled=true\n\
key\\ with\\=odd\\:chars = \\u0041\\t\\\\\r\n\
alluxio.master.journal.type=UFS\n",
    )?;
    Ok(())
}
