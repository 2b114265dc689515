//! Raft peer messages: the transport's frames (`MessageBatch`,
//! `SnapshotChunk`), the rust-protobuf `eraftpb::Message` inside, the
//! inbound checks, and raft-rs stepping what the checks let through.

use journal_raft::proto::{MessageBatch, SnapshotChunk};
use journal_raft::validate::{inbound_verdict, log_term, snapshot_head_verdict, LocalView};
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeV2, ConfState, Entry, EntryType, HardState, Message,
    MessageType,
};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

use crate::records;

/// The receiving member's id; the group is 1, 2, 3.
pub const ME: u64 = 1;
/// The group's voters.
pub const MEMBERS: &[u64] = &[1, 2, 3];
/// Terms of the receiver's log entries 1..=5.
pub const LOG_TERMS: &[u64] = &[1, 1, 2, 2, 2];

/// A member of a three-voter group with five entries (three committed):
/// a follower, or (`leader`) the leader of term 3 after a real election.
pub fn member(leader: bool) -> RawNode<MemStorage> {
    let storage = MemStorage::new_with_conf_state(ConfState::from((MEMBERS.to_vec(), vec![])));
    let entries: Vec<Entry> = LOG_TERMS
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry {
            index: i as u64 + 1,
            term,
            data: vec![i as u8; 4].into(),
            ..Default::default()
        })
        .collect();
    {
        let mut core = storage.wl();
        core.append(&entries).expect("a fresh log takes entries");
        core.set_hardstate(HardState {
            term: 2,
            commit: 3,
            ..Default::default()
        });
    }
    let cfg = Config {
        id: ME,
        election_tick: 10,
        heartbeat_tick: 3,
        pre_vote: true,
        check_quorum: true,
        applied: 3,
        ..Default::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let mut node = RawNode::new(&cfg, storage, &logger).expect("a valid member");
    if leader {
        node.campaign().expect("campaigns");
        drain(&mut node);
        for t in [
            MessageType::MsgRequestPreVoteResponse,
            MessageType::MsgRequestVoteResponse,
        ] {
            let mut m = Message::default();
            m.set_msg_type(t);
            m.from = 2;
            m.to = ME;
            m.term = if t == MessageType::MsgRequestPreVoteResponse {
                node.raft.term + 1
            } else {
                node.raft.term
            };
            node.step(m).expect("a vote steps");
            drain(&mut node);
        }
        assert_eq!(node.raft.state, StateRole::Leader);
    }
    node
}

/// Persists and acknowledges whatever raft-rs produced, as the driver does
/// (messages to peers are dropped: the fuzz input plays every peer).
fn drain(node: &mut RawNode<MemStorage>) {
    for _ in 0..8 {
        if !node.has_ready() {
            return;
        }
        let mut rd = node.ready();
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            node.mut_store()
                .wl()
                .apply_snapshot(snap)
                .expect("raft-rs hands a snapshot newer than the log");
        }
        let _ = rd.take_messages();
        node.mut_store()
            .wl()
            .append(rd.entries())
            .expect("raft-rs hands entries that follow the log");
        if let Some(hs) = rd.hs() {
            node.mut_store().wl().set_hardstate(hs.clone());
        }
        let committed = rd.take_committed_entries();
        let _ = rd.take_persisted_messages();
        apply_membership(node, &committed);
        let mut light = node.advance(rd);
        if let Some(commit) = light.commit_index() {
            node.mut_store().wl().mut_hard_state().commit = commit;
        }
        let _ = light.take_messages();
        let committed = light.take_committed_entries();
        apply_membership(node, &committed);
        node.advance_apply();
    }
}

/// Applies the committed membership changes, as the driver does: raft-rs
/// only changes its configuration when told, and a joint configuration that
/// is never left makes its leader propose the leave again and again.
fn apply_membership(node: &mut RawNode<MemStorage>, entries: &[Entry]) {
    for e in entries {
        let cc = match e.get_entry_type() {
            EntryType::EntryConfChangeV2 => match ConfChangeV2::parse_from_bytes(&e.data) {
                Ok(cc) => cc,
                Err(_) => continue,
            },
            EntryType::EntryConfChange => match ConfChange::parse_from_bytes(&e.data) {
                Ok(cc) => {
                    let mut single = ConfChangeSingle {
                        node_id: cc.node_id,
                        ..Default::default()
                    };
                    single.set_change_type(cc.get_change_type());
                    let mut v2 = ConfChangeV2::default();
                    v2.set_changes(vec![single].into());
                    v2
                }
                Err(_) => continue,
            },
            EntryType::EntryNormal => continue,
        };
        if let Ok(cs) = node.apply_conf_change(&cc) {
            node.mut_store().wl().set_conf_state(cs);
        }
    }
}

/// Feeds `data` to member [`ME`]: its first byte picks follower or leader,
/// then each record ([`records::split`]) is a `MessageBatch` (first byte
/// even) or the first `SnapshotChunk` of a snapshot stream (odd), decoded
/// and screened as the peer server and the driver do.
///
/// Contract: nothing a peer sends makes this member panic: every message
/// the checks let through steps into raft-rs (which may refuse it with an
/// error) and its results persist.
pub fn target(data: &[u8]) {
    feed(data);
}

/// [`target`]'s body; returns how many messages passed the checks and were
/// stepped (the seed test checks the seeds reach raft-rs).
pub fn feed(data: &[u8]) -> usize {
    let mut stepped = 0;
    let Some((&mode, rest)) = data.split_first() else {
        return stepped;
    };
    let mut node = member(mode & 1 == 1);
    for record in records::split(rest) {
        let Some((&tag, body)) = record.split_first() else {
            continue;
        };
        if tag & 1 == 0 {
            let Ok(batch) = <MessageBatch as prost::Message>::decode(body) else {
                continue;
            };
            for bytes in &batch.messages {
                // The peer server: unparsable, relayed or snapshot messages end the stream.
                let Ok(m) = Message::parse_from_bytes(bytes) else {
                    break;
                };
                if m.from != batch.from || m.msg_type == MessageType::MsgSnapshot {
                    break;
                }
                stepped += usize::from(step(&mut node, m));
            }
        } else {
            let Ok(chunk) = <SnapshotChunk as prost::Message>::decode(body) else {
                continue;
            };
            let Ok(m) = Message::parse_from_bytes(&chunk.message) else {
                continue;
            };
            if m.to != ME || m.msg_type != MessageType::MsgSnapshot {
                continue;
            }
            if snapshot_head_verdict(&m, ME).is_err() || chunk.total == 0 {
                continue;
            }
            // The stream's bytes are verified as a snapshot file before the
            // message steps (the snapshot_stream target covers that part).
            stepped += usize::from(step(&mut node, m));
        }
    }
    stepped
}

/// The driver's `step_peer`: check against the local view, then step;
/// true when the message passed the checks.
fn step(node: &mut RawNode<MemStorage>, m: Message) -> bool {
    let log = &node.raft.raft_log;
    let term_at = |i: u64| log_term(log, i);
    let is_member = |id: u64| MEMBERS.contains(&id);
    let view = LocalView {
        id: ME,
        last_index: log.last_index(),
        committed: log.committed,
        term_at: &term_at,
        uninitialized: false,
        leader: node.raft.state == StateRole::Leader,
        is_member: &is_member,
    };
    if inbound_verdict(&m, &view).is_err() {
        return false;
    }
    let _ = node.step(m);
    drain(node);
    true
}
