//! Well-formed but impossible peer messages, sent through the real gRPC peer
//! port as a hostile (or badly broken) peer would, must not stop a member:
//! each is dropped, the group keeps serving, acknowledged entries stay.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{assert_acked_present, entry, init_tracing, Group};
use journal_core::snapshot::{write_snapshot, SnapshotMeta};
use journal_core::testkit::TestMachine;
use journal_core::JournalSystem;
use journal_raft::member_id_for;
use journal_raft::proto::raft_peer_client::RaftPeerClient;
use journal_raft::proto::{MessageBatch, SnapshotChunk};
use protobuf::Message as _;
use raft::eraftpb::{Entry, Message, MessageType};

async fn client(addr: &str) -> RaftPeerClient<tonic::transport::Channel> {
    RaftPeerClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to the peer port")
}

/// Sends raw message bytes as one batch from `from`; returns the call's outcome.
async fn send_raw(
    fp: u64,
    addr: &str,
    from: u64,
    messages: Vec<Bytes>,
) -> Result<(), tonic::Status> {
    let batch = MessageBatch {
        from,
        messages,
        cluster_id: "raft-test".into(),
        membership: fp,
        address: String::new(),
    };
    client(addr)
        .await
        .send(futures::stream::iter(vec![batch]))
        .await
        .map(|_| ())
}

async fn send_msg(fp: u64, addr: &str, m: &Message) -> Result<(), tonic::Status> {
    send_raw(
        fp,
        addr,
        m.from,
        vec![Bytes::from(m.write_to_bytes().unwrap())],
    )
    .await
}

fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = to;
    m.term = term;
    m
}

/// A complete, valid snapshot stream from `from` to `to`: a `MsgSnapshot`
/// of message term `msg_term` for `index`/`term` naming `voters`, and a
/// snapshot file of an empty state machine whose header matches it.
fn forged_snapshot(
    membership: u64,
    (from, to, msg_term): (u64, u64, u64),
    index: u64,
    term: u64,
    voters: Vec<u64>,
) -> Vec<SnapshotChunk> {
    let mut snap = msg(MessageType::MsgSnapshot, from, to, msg_term);
    snap.mut_snapshot().mut_metadata().index = index;
    snap.mut_snapshot().mut_metadata().term = term;
    snap.mut_snapshot().mut_metadata().mut_conf_state().voters = voters;
    let mut file = Vec::new();
    let meta = SnapshotMeta {
        cluster_id: "raft-test".into(),
        next_seq: index + 1,
        epoch: term,
    };
    write_snapshot(&TestMachine::new(), &meta, &mut file, 1 << 20).unwrap();
    vec![
        SnapshotChunk {
            from,
            message: snap.write_to_bytes().unwrap().into(),
            data: Bytes::new(),
            last: false,
            total: file.len() as u64,
            cluster_id: "raft-test".into(),
            membership,
            address: String::new(),
        },
        SnapshotChunk {
            from,
            message: Bytes::new(),
            data: file.into(),
            last: true,
            total: 0,
            ..Default::default()
        },
    ]
}

async fn propose_n(g: &Group, p: usize, tag: &str, n: usize) -> Vec<(Bytes, Bytes)> {
    let mut acked = Vec::new();
    for i in 0..n {
        let e = entry(tag, i, 50);
        let out = g.m(p).journal.propose(e.clone()).await.expect("propose");
        acked.push((e, out));
    }
    acked
}

/// Every member applies a fresh entry and holds every acknowledged one.
async fn assert_serving(g: &Group, p: usize, acked: &mut Vec<(Bytes, Bytes)>, tag: &str) {
    acked.extend(propose_n(g, p, tag, 3).await);
    let last = TestMachine::output_seq(&acked.last().unwrap().1).unwrap();
    for i in 0..3 {
        g.wait_applied(i, last, Duration::from_secs(30)).await;
        assert_acked_present(&g.m(i).entries(), acked, &format!("member {i} after {tag}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn impossible_heartbeat_to_every_member_stops_no_one() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        for i in 0..3 {
            g.open(i).await;
        }
        let p = g.primary(Duration::from_secs(30)).await;
        let mut acked = propose_n(&g, p, "before", 20).await;
        let leader = member_id_for(&g.addresses[p]);
        let term = g.m(p).journal.status().epoch;

        // The exact message: a heartbeat from the leader's id, current term,
        // committing 2^40 (far past every member's log).
        for i in 0..3 {
            let mut hb = msg(
                MessageType::MsgHeartbeat,
                leader,
                member_id_for(&g.addresses[i]),
                term,
            );
            hb.commit = 1 << 40;
            send_msg(g.membership(), &g.addresses[i], &hb)
                .await
                .expect("the peer port accepts the batch");
        }
        assert_serving(&g, p, &mut acked, "heartbeat").await;
        for i in 0..3 {
            let c = g.m(i).journal.counters();
            assert!(
                c.rejected_messages >= 1,
                "member {i} did not drop the heartbeat: {c:?}"
            );
            assert_eq!(c.step_panics, 0, "member {i}: raft-rs saw the heartbeat");
        }
        assert_eq!(g.m(p).journal.leader_id(), leader, "leadership moved");
        assert_eq!(g.m(p).journal.status().epoch, term, "term changed");
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_impossible_messages_are_dropped() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        for i in 0..3 {
            g.open(i).await;
        }
        let p = g.primary(Duration::from_secs(30)).await;
        let mut acked = propose_n(&g, p, "before", 10).await;
        let leader = member_id_for(&g.addresses[p]);
        let term = g.m(p).journal.status().epoch;
        let f = (p + 1) % 3;
        let other = (p + 2) % 3;
        let fid = member_id_for(&g.addresses[f]);
        let faddr = g.addresses[f].clone();
        let last = g.m(f).journal.status().last_applied;
        let rejected_before = g.m(f).journal.counters().rejected_messages;

        // An unknown sender id (a heartbeat that would be harmless from a member).
        let mut unknown = msg(MessageType::MsgHeartbeat, 0xdead_beef, fid, term + 5);
        unknown.commit = 1;
        send_msg(g.membership(), &faddr, &unknown)
            .await
            .expect("batch accepted");

        // Addressed to another member but delivered here; committing past the log.
        let mut misrouted = msg(
            MessageType::MsgHeartbeat,
            leader,
            member_id_for(&g.addresses[other]),
            term,
        );
        misrouted.commit = 1 << 40;
        send_msg(g.membership(), &faddr, &misrouted)
            .await
            .expect("batch accepted");

        // A local message type from outside.
        let hup = msg(MessageType::MsgHup, leader, fid, term);
        send_msg(g.membership(), &faddr, &hup)
            .await
            .expect("batch accepted");

        // An append whose entries skip an index, committing one of them.
        let mut app = msg(MessageType::MsgAppend, leader, fid, term);
        app.index = last;
        app.log_term = term;
        let e = |index: u64| Entry {
            index,
            term,
            data: Bytes::from_static(b"forged"),
            ..Default::default()
        };
        app.entries = vec![e(last + 1), e(last + 3)].into();
        app.commit = last + 2;
        send_msg(g.membership(), &faddr, &app)
            .await
            .expect("batch accepted");

        // An append response acknowledging far past the leader's log.
        let mut ack = msg(MessageType::MsgAppendResponse, fid, leader, term);
        ack.index = 1 << 40;
        send_msg(g.membership(), &g.addresses[p], &ack)
            .await
            .expect("batch accepted");

        // Garbage that does not parse: the stream is refused.
        let garbage = send_raw(
            g.membership(),
            &faddr,
            leader,
            vec![Bytes::from_static(&[0xff, 0xff, 0xff, 0x07, 0x01])],
        )
        .await;
        assert!(garbage.is_err(), "garbage bytes were accepted");

        // A snapshot at an absurd index, as a complete and valid snapshot
        // stream (header, frames, trailer) that claims that index.
        let index = 1u64 << 60;
        let voters = g.addresses.iter().map(|a| member_id_for(a)).collect();
        let chunks = forged_snapshot(g.membership(), (leader, fid, term), index, term, voters);
        let r = client(&faddr)
            .await
            .snapshot(futures::stream::iter(chunks))
            .await;
        assert!(r.is_err(), "a snapshot at index 2^60 was accepted");

        assert_serving(&g, p, &mut acked, "the others").await;
        let c = g.m(f).journal.counters();
        assert!(
            c.rejected_messages >= rejected_before + 6,
            "not every impossible message was counted as dropped: {c:?}"
        );
        assert!(g.m(p).journal.counters().rejected_messages >= 1);
        for i in 0..3 {
            assert_eq!(g.m(i).journal.counters().step_panics, 0);
            assert!(
                !g.m(i)
                    .entries()
                    .iter()
                    .any(|(_, e)| e.as_ref() == b"forged"),
                "member {i} applied a forged entry"
            );
        }
        assert_eq!(g.m(p).journal.leader_id(), leader, "leadership moved");
        assert_eq!(g.m(p).journal.status().epoch, term, "term changed");
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

/// A running group of three with ten acknowledged entries, all applied on
/// follower `f`, and nothing proposed after them: the follower's commit
/// index is `last`.
struct Settled {
    g: Group,
    p: usize,
    acked: Vec<(Bytes, Bytes)>,
    leader: u64,
    term: u64,
    f: usize,
    fid: u64,
    last: u64,
}

async fn settled_group() -> Settled {
    let mut g = Group::new(3);
    for i in 0..3 {
        g.open(i).await;
    }
    let p = g.primary(Duration::from_secs(30)).await;
    let acked = propose_n(&g, p, "before", 10).await;
    let leader = member_id_for(&g.addresses[p]);
    let term = g.m(p).journal.status().epoch;
    let f = (p + 1) % 3;
    let fid = member_id_for(&g.addresses[f]);
    let last = TestMachine::output_seq(&acked.last().unwrap().1).unwrap();
    g.wait_applied(f, last, Duration::from_secs(30)).await;
    Settled {
        g,
        p,
        acked,
        leader,
        term,
        f,
        fid,
        last,
    }
}

/// A complete, well-formed snapshot stream from the leader's id for the
/// follower's commit index, but of another term and holding an empty state
/// machine. Committed entries never change, so no honest leader sends it;
/// raft-rs alone would restore it (its index is not below the commit index
/// and its term does not match) and the follower would lose every entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_contradicting_the_committed_log_changes_nothing() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let Settled {
            mut g,
            p,
            mut acked,
            leader,
            term,
            f,
            fid,
            last,
        } = settled_group().await;
        let faddr = g.addresses[f].clone();
        let rejected_before = g.m(f).journal.counters().rejected_messages;

        // The entries at `last` are of term `term`; the snapshot claims
        // `term + 1` (a message may carry its own term or a higher one).
        let forged_term = term + 1;
        let voters = g.addresses.iter().map(|a| member_id_for(a)).collect();
        let chunks = forged_snapshot(
            g.membership(),
            (leader, fid, forged_term),
            last,
            forged_term,
            voters,
        );
        // Whether the stream call itself succeeds does not matter (its
        // bytes are a valid snapshot file); what the member does with it does.
        let _ = client(&faddr)
            .await
            .snapshot(futures::stream::iter(chunks))
            .await;

        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while g.m(f).journal.counters().rejected_messages == rejected_before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the follower never refused the snapshot: {:?}",
                g.m(f).journal.counters()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_acked_present(
            &g.m(f).entries(),
            &acked,
            "follower after the forged snapshot",
        );
        assert_serving(&g, p, &mut acked, "after the forged snapshot").await;
        assert_eq!(g.m(f).journal.counters().step_panics, 0);
        assert_eq!(g.m(p).journal.leader_id(), leader, "leadership moved");
        assert_eq!(g.m(p).journal.status().epoch, term, "term changed");
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}

/// The member's snapshot files: (file name, bytes), and whether any
/// received snapshot still waits under its temporary name.
fn snapshot_files(dir: &std::path::Path) -> (Vec<(String, Vec<u8>)>, bool) {
    let mut files = Vec::new();
    let mut pending = false;
    for e in std::fs::read_dir(dir.join("snapshots")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("recv-") {
            pending = true;
        } else if name.starts_with("snap-") && !name.ends_with(".tmp") {
            files.push((name, std::fs::read(e.path()).unwrap()));
        }
    }
    files.sort();
    (files, pending)
}

/// A stream that names the receiver's own snapshot (its index and term)
/// but carries another state. Raft-rs has nothing to restore (the terms
/// match), so the message changes nothing in memory; the file must not
/// change either, or a restart would rebuild the sender's state from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_stream_naming_the_receivers_snapshot_does_not_replace_it() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let Settled {
            mut g,
            p,
            mut acked,
            leader,
            term,
            f,
            fid,
            ..
        } = settled_group().await;
        g.m(f)
            .journal
            .checkpoint()
            .await
            .expect("the follower takes a snapshot");
        let (before, _) = snapshot_files(&g.dir(f));
        // The newest file is the one the member stands on: snap-INDEX-TERM.
        let (name, _) = before.last().expect("the follower has a snapshot file");
        let mut parts = name.trim_start_matches("snap-").split('-');
        let mut hex = || u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let (index, snap_term) = (hex(), hex());

        let voters = g.addresses.iter().map(|a| member_id_for(a)).collect();
        let chunks = forged_snapshot(
            g.membership(),
            (leader, fid, term),
            index,
            snap_term,
            voters,
        );
        client(&g.addresses[f])
            .await
            .snapshot(futures::stream::iter(chunks))
            .await
            .expect("a valid stream is received");
        // The driver settles the received file at its next Ready.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, pending) = snapshot_files(&g.dir(f));
            if !pending {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the received snapshot was never settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (after, _) = snapshot_files(&g.dir(f));
        assert_eq!(after, before, "the member's snapshot files changed");

        // A restart rebuilds the state from that snapshot and the log.
        g.close(f).await;
        g.open(f).await;
        assert_serving(&g, p, &mut acked, "after the restart").await;
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}
