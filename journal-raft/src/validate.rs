//! Checks on every message a peer sends before it reaches raft-rs.
//!
//! raft-rs trusts its peers: a well-formed but impossible message (a
//! heartbeat committing past the end of the local log, an append whose
//! entries do not follow its index) makes it panic. A member must not die of
//! one message, so the driver steps only messages that pass `check`; the
//! rest are dropped and logged (rate-limited, naming sender and reason).
//!
//! What is checked (against this member's current state):
//! - `to` is this member; `from` is a member (conf state, progress tracker,
//!   replicated peer map or configured initial addresses), except while this
//!   member is still empty and waits to be added (it knows no member yet);
//! - the type is one peers send each other (never local ones such as
//!   `MsgHup`, `MsgBeat`, `MsgPropose`, `MsgUnreachable`, `MsgSnapStatus`);
//! - terms and indexes are below [`MAX_SANE`];
//! - a heartbeat commits at most the local last index;
//! - an append's entries are numbered `index+1, index+2, ...`, their terms
//!   do not decrease, lie between `log_term` and the message's term, and it
//!   commits at most `index + entries`;
//! - an append response acknowledges at most the local last index;
//! - a leader transfer request reaches only a leader;
//! - vote requests and answers carry a term; read requests and answers
//!   carry their context entry;
//! - a snapshot has index and term ≥ 1, term ≤ the message's term, and a
//!   conf state raft-rs can restore (voters present, no id both voter and
//!   learner, ids non-zero and not repeated, auto_leave only when joint).
//!
//! Peers are not authenticated: a peer that lies consistently (a forged
//! append from the leader's id with plausible numbers) is not caught here.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfState, Message, MessageType};

/// Terms and indexes at or above this are refused: 2^56 is ~2,000 years of
/// entries at a million a second, and keeps `index + 1` and `term + 1` far
/// from overflowing inside raft-rs.
pub const MAX_SANE: u64 = 1 << 56;

static CHECKS_ENABLED: AtomicBool = AtomicBool::new(true);

/// Test hook: turns the inbound checks off (process-wide) so a test can
/// reach raft-rs's own panics and exercise the recovery behind them. Never
/// call this outside tests.
#[doc(hidden)]
pub fn set_inbound_checks(enabled: bool) {
    CHECKS_ENABLED.store(enabled, Ordering::SeqCst);
}

/// What a message is checked against: the receiving member's own state.
/// Public (hidden) so the fuzz targets check exactly as the driver does.
#[doc(hidden)]
pub struct LocalView<'a> {
    /// The receiving member's id.
    pub id: u64,
    /// Last index of the local log (stable and unstable).
    pub last_index: u64,
    /// Highest index this member knows to be committed.
    pub committed: u64,
    /// The term of a local index: its entry's, or the snapshot's at the
    /// snapshot index; `None` where the log does not say (compacted away
    /// or past its end).
    pub term_at: &'a dyn Fn(u64) -> Option<u64>,
    /// This member knows no membership yet (waits to be added).
    pub uninitialized: bool,
    /// This member leads its group now.
    pub leader: bool,
    /// Whether an id is a member (voter, learner, either side of a joint
    /// configuration, or a known peer).
    pub is_member: &'a dyn Fn(u64) -> bool,
}

/// The term of index `i` in `log`, for [`LocalView::term_at`]: the unstable
/// log's, else storage's; `None` where neither says. Not `RaftLog::term`: on
/// a storage error other than compacted or unavailable it panics, and the
/// checks run outside the step's panic guard.
#[doc(hidden)]
pub fn log_term<S: raft::Storage>(log: &raft::RaftLog<S>, i: u64) -> Option<u64> {
    log.unstable
        .maybe_term(i)
        .or_else(|| log.store.term(i).ok())
}

/// Why a message was refused: a short fixed kind (for rate limiting) and detail.
pub(crate) struct Refusal {
    pub kind: &'static str,
    pub detail: Cow<'static, str>,
}

fn refuse(kind: &'static str, detail: impl Into<Cow<'static, str>>) -> Refusal {
    Refusal {
        kind,
        detail: detail.into(),
    }
}

/// Message types one member sends another.
fn peer_type(t: MessageType) -> bool {
    use MessageType::*;
    matches!(
        t,
        MsgAppend
            | MsgAppendResponse
            | MsgRequestVote
            | MsgRequestVoteResponse
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgSnapshot
            | MsgHeartbeat
            | MsgHeartbeatResponse
            | MsgTransferLeader
            | MsgTimeoutNow
            | MsgReadIndex
            | MsgReadIndexResp
    )
}

fn conf_state_ok(cs: &ConfState) -> bool {
    if cs.voters.is_empty() {
        return false;
    }
    // raft-rs rebuilds the conf state from its tracker after a restore and
    // dies if the two differ: ids are a set (no 0, no repeats), and
    // auto_leave exists only in a joint configuration.
    let is_set = |ids: &[u64]| {
        ids.iter()
            .enumerate()
            .all(|(i, id)| *id != 0 && !ids[..i].contains(id))
    };
    if ![
        &cs.voters,
        &cs.learners,
        &cs.voters_outgoing,
        &cs.learners_next,
    ]
    .iter()
    .all(|ids| is_set(ids))
        || (cs.auto_leave && cs.voters_outgoing.is_empty())
    {
        return false;
    }
    let overlaps = |a: &[u64], b: &[u64]| a.iter().any(|x| b.contains(x));
    !overlaps(&cs.voters, &cs.learners)
        && !overlaps(&cs.voters_outgoing, &cs.learners)
        && cs
            .learners_next
            .iter()
            .all(|l| cs.voters_outgoing.contains(l))
        && (cs.voters_outgoing.is_empty() || !overlaps(&cs.voters, &cs.learners_next))
}

/// Ok when `m` may be stepped into raft-rs; see the module documentation.
pub(crate) fn check(m: &Message, v: &LocalView<'_>) -> Result<(), Refusal> {
    if !CHECKS_ENABLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    check_stateless(m, v.id)?;
    if !v.uninitialized && !(v.is_member)(m.from) {
        return Err(refuse(
            "unknown sender",
            format!("{} is not a member", m.from),
        ));
    }
    match m.get_msg_type() {
        // Only a leader takes a transfer request from a peer; a follower
        // would forward it with the peer's term set, which raft-rs dies of.
        MessageType::MsgTransferLeader if !v.leader => Err(refuse(
            "transfer to a non-leader",
            "a leader transfer request reached a member that does not lead",
        )),
        MessageType::MsgHeartbeat if m.commit > v.last_index => Err(refuse(
            "heartbeat past the log",
            format!(
                "commits {} but the local log ends at {}",
                m.commit, v.last_index
            ),
        )),
        MessageType::MsgAppendResponse if !m.reject && m.index > v.last_index => Err(refuse(
            "ack past the log",
            format!(
                "acknowledges {} but the local log ends at {}",
                m.index, v.last_index
            ),
        )),
        MessageType::MsgSnapshot => check_snapshot_against_log(m, v),
        _ => Ok(()),
    }
}

/// A snapshot at the commit index must carry the term this member's log
/// has there: committed entries never change. raft-rs ignores a snapshot
/// below the commit index, and fast-forwards on one whose term matches, but
/// restores one exactly at the commit index with another term, replacing
/// committed state with the sender's (an in-memory log that already starts
/// past that index refuses it: "snapshot out of date").
///
/// This is a consistency check, not a security boundary: a snapshot above
/// the commit index is what an honest leader sends a lagging follower, and
/// nothing in it tells a forged one apart. Peers that hold the cluster
/// secret are trusted (see `auth`).
fn check_snapshot_against_log(m: &Message, v: &LocalView<'_>) -> Result<(), Refusal> {
    let meta = m.get_snapshot().get_metadata();
    if meta.index != v.committed {
        return Ok(());
    }
    match (v.term_at)(meta.index) {
        Some(local) if local != meta.term => Err(refuse(
            "snapshot contradicts the committed log",
            format!(
                "snapshot at committed index {} has term {} where the local log has term {local}",
                meta.index, meta.term
            ),
        )),
        _ => Ok(()),
    }
}

/// The checks that need nothing but this member's id: the peer server runs
/// them before it accepts a snapshot stream, so an impossible snapshot is
/// refused before its bytes are written to disk.
pub(crate) fn check_stateless(m: &Message, my_id: u64) -> Result<(), Refusal> {
    if !CHECKS_ENABLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    if m.to != my_id {
        return Err(refuse("wrong recipient", format!("addressed to {}", m.to)));
    }
    if m.from == 0 || m.from == my_id {
        return Err(refuse("bad sender", format!("sender id {}", m.from)));
    }
    let t = m.get_msg_type();
    if !peer_type(t) {
        return Err(refuse(
            "local message type",
            format!("{t:?} is not sent between members"),
        ));
    }
    if m.term >= MAX_SANE
        || m.index >= MAX_SANE
        || m.log_term >= MAX_SANE
        || m.commit >= MAX_SANE
        || m.reject_hint >= MAX_SANE
    {
        return Err(refuse(
            "absurd number",
            format!(
                "term {} index {} log_term {} commit {}",
                m.term, m.index, m.log_term, m.commit
            ),
        ));
    }
    // raft-rs stamps every message it sends between members with a term
    // of at least 1, except a follower's forwarded read request. Term 0 is
    // how raft-rs marks a local message and skips its term checks: a vote
    // without a term makes it die answering, and an append, heartbeat or
    // snapshot without one reaches a candidate's handler, which asserts
    // (debug) or steps the member down to term 0 (release). A read request
    // or answer without its context entry makes it index an empty list.
    if m.term == 0 && t != MessageType::MsgReadIndex {
        let kind = match t {
            MessageType::MsgRequestVote
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVote
            | MessageType::MsgRequestPreVoteResponse => "vote without a term",
            _ => "message without a term",
        };
        return Err(refuse(kind, format!("{t:?} of term 0")));
    }
    // And a read request never carries one: a follower forwarding one that
    // does to its leader dies ("term should not be set").
    if t == MessageType::MsgReadIndex && m.term != 0 {
        return Err(refuse(
            "read request with a term",
            format!("MsgReadIndex of term {}", m.term),
        ));
    }
    if matches!(t, MessageType::MsgReadIndex | MessageType::MsgReadIndexResp)
        && m.entries.is_empty()
    {
        return Err(refuse(
            "read without its context",
            format!("{t:?} carries no context entry"),
        ));
    }
    match t {
        MessageType::MsgAppend => check_append(m),
        MessageType::MsgSnapshot => {
            let meta = m.get_snapshot().get_metadata();
            if meta.index == 0 || meta.term == 0 || meta.index >= MAX_SANE || meta.term > m.term {
                return Err(refuse(
                    "bad snapshot",
                    format!(
                        "snapshot index {} term {} in a message of term {}",
                        meta.index, meta.term, m.term
                    ),
                ));
            }
            if !conf_state_ok(meta.get_conf_state()) {
                return Err(refuse(
                    "bad snapshot",
                    format!("impossible conf state {:?}", meta.get_conf_state()),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The driver's verdict on an inbound message, for fuzzing and tests outside
/// this crate: `Ok` exactly when the driver of the member described by
/// `view` would step `m` into raft-rs; `Err` carries the refusal's kind and
/// detail.
#[doc(hidden)]
pub fn inbound_verdict(m: &Message, view: &LocalView<'_>) -> Result<(), String> {
    check(m, view).map_err(|r| format!("{}: {}", r.kind, r.detail))
}

/// The peer server's verdict on the `MsgSnapshot` that opens a snapshot
/// stream to member `my_id` (see [`inbound_verdict`]; this is the part that
/// needs no local state).
#[doc(hidden)]
pub fn snapshot_head_verdict(m: &Message, my_id: u64) -> Result<(), String> {
    check_stateless(m, my_id).map_err(|r| format!("{}: {}", r.kind, r.detail))
}

fn check_append(m: &Message) -> Result<(), Refusal> {
    // Every entry past index 0 has a term of at least 1. raft-rs reads the
    // term of an index past its log as 0, so an entry of term 0 there
    // "matches" without being appended and the commit that follows runs
    // past the log (it dies: "to_commit is out of range").
    if m.index > 0 && m.log_term == 0 {
        return Err(refuse(
            "entry without a term",
            format!("append after index {} of term 0", m.index),
        ));
    }
    if let Some(e) = m.entries.iter().find(|e| e.term == 0) {
        return Err(refuse(
            "entry without a term",
            format!("entry {} has term 0", e.index),
        ));
    }
    let mut prev_term = m.log_term;
    for (i, e) in m.entries.iter().enumerate() {
        let want = m.index + 1 + i as u64;
        if e.index != want {
            return Err(refuse(
                "non-consecutive append",
                format!(
                    "entry {i} has index {} where {want} belongs (append at {})",
                    e.index, m.index
                ),
            ));
        }
        if e.term < prev_term || e.term > m.term {
            return Err(refuse(
                "append terms out of order",
                format!(
                    "entry {} has term {} (previous {prev_term}, message term {})",
                    e.index, e.term, m.term
                ),
            ));
        }
        prev_term = e.term;
    }
    if m.log_term > m.term {
        return Err(refuse(
            "append terms out of order",
            format!("log_term {} above message term {}", m.log_term, m.term),
        ));
    }
    let last = m.index + m.entries.len() as u64;
    if m.commit > last {
        return Err(refuse(
            "append commits past its entries",
            format!("commits {} but ends at {last}", m.commit),
        ));
    }
    Ok(())
}

/// Logs dropped messages at most once per sender and reason per interval,
/// with a count of the ones not logged in between.
pub(crate) struct DropLog {
    seen: HashMap<(u64, &'static str), (Instant, u64)>,
    interval: Duration,
}

impl DropLog {
    pub fn new() -> Self {
        DropLog {
            seen: HashMap::new(),
            interval: Duration::from_secs(5),
        }
    }

    /// Records one dropped message from `from`; logs unless one like it was
    /// logged within the interval.
    pub fn dropped(&mut self, member: u64, from: u64, why: &Refusal, msg_type: MessageType) {
        // Sender ids are chosen by whoever sends; keep the map bounded.
        if self.seen.len() > 1024 {
            self.seen.clear();
        }
        let now = Instant::now();
        let slot = self.seen.entry((from, why.kind)).or_insert((now, 0));
        if slot.1 > 0 && now.duration_since(slot.0) < self.interval {
            slot.1 += 1;
            return;
        }
        let suppressed = slot.1.saturating_sub(1);
        *slot = (now, 1);
        tracing::warn!(
            member,
            from,
            ?msg_type,
            reason = why.kind,
            detail = %why.detail,
            suppressed,
            "dropped an impossible message from a peer"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::Entry;

    fn view(last: u64) -> (u64, u64) {
        (1, last)
    }

    fn run(m: &Message, last: u64) -> Result<(), Refusal> {
        let (id, last_index) = view(last);
        let members = |x: u64| x == 2 || x == 3;
        check(
            m,
            &LocalView {
                id,
                last_index,
                committed: last_index,
                term_at: &|_| None,
                uninitialized: false,
                leader: false,
                is_member: &members,
            },
        )
    }

    fn msg(t: MessageType) -> Message {
        let mut m = Message::default();
        m.set_msg_type(t);
        m.to = 1;
        m.from = 2;
        m.term = 5;
        m
    }

    /// Found by the raft_peer fuzz target: each of these passed the checks
    /// and then made raft-rs panic (a vote answered without a term, a read
    /// without its context entry, a snapshot whose conf state raft-rs
    /// rebuilds differently).
    #[test]
    fn messages_raft_rs_dies_of_are_refused() {
        for t in [
            MessageType::MsgRequestVote,
            MessageType::MsgRequestPreVote,
            MessageType::MsgRequestVoteResponse,
            MessageType::MsgRequestPreVoteResponse,
        ] {
            let mut m = msg(t);
            m.term = 0;
            assert_eq!(
                run(&m, 10).err().map(|r| r.kind),
                Some("vote without a term")
            );
        }
        for t in [MessageType::MsgReadIndex, MessageType::MsgReadIndexResp] {
            let mut m = msg(t);
            if t == MessageType::MsgReadIndex {
                // raft-rs forwards read requests without a term.
                m.term = 0;
            }
            assert_eq!(
                run(&m, 10).err().map(|r| r.kind),
                Some("read without its context")
            );
            m.entries = vec![Entry::default()].into();
            assert!(run(&m, 10).is_ok());
        }
        let snap = |cs: ConfState| {
            let mut m = msg(MessageType::MsgSnapshot);
            m.mut_snapshot().mut_metadata().index = 20;
            m.mut_snapshot().mut_metadata().term = 5;
            m.mut_snapshot().mut_metadata().set_conf_state(cs);
            check_stateless(&m, 1).err().map(|r| r.kind)
        };
        assert_eq!(snap(ConfState::from((vec![1, 2, 3], vec![]))), None);
        assert_eq!(
            snap(ConfState::from((vec![1, 2, 2], vec![]))),
            Some("bad snapshot")
        );
        assert_eq!(
            snap(ConfState::from((vec![1, 0], vec![]))),
            Some("bad snapshot")
        );
        let mut leave = ConfState::from((vec![1, 2, 3], vec![]));
        leave.auto_leave = true;
        assert_eq!(snap(leave.clone()), Some("bad snapshot"));
        leave.voters_outgoing = vec![1, 2];
        assert_eq!(snap(leave), None);
    }

    /// Found by the raft_peer fuzz target: a second snapshot at the index
    /// the first one committed, with another term. raft-rs restores it
    /// (its index is not below the commit index and the terms differ).
    #[test]
    fn a_snapshot_contradicting_the_committed_log_is_refused() {
        let members = |x: u64| x == 2 || x == 3;
        // Committed up to 20; the local term at 20 is 3, at 19 unknown.
        let term_at = |i: u64| match i {
            20..=25 => Some(3),
            _ => None,
        };
        let verdict = |index: u64, term: u64| {
            let mut m = msg(MessageType::MsgSnapshot);
            m.mut_snapshot().mut_metadata().index = index;
            m.mut_snapshot().mut_metadata().term = term;
            m.mut_snapshot()
                .mut_metadata()
                .set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
            let view = LocalView {
                id: 1,
                last_index: 25,
                committed: 20,
                term_at: &term_at,
                uninitialized: false,
                leader: false,
                is_member: &members,
            };
            check(&m, &view).err().map(|r| r.kind)
        };
        assert_eq!(
            verdict(20, 2),
            Some("snapshot contradicts the committed log")
        );
        assert_eq!(
            verdict(20, 4),
            Some("snapshot contradicts the committed log")
        );
        // The same snapshot again, one past the commit index (uncommitted
        // entries may be replaced), or where the log no longer says.
        assert_eq!(verdict(20, 3), None);
        assert_eq!(verdict(21, 2), None);
        assert_eq!(verdict(19, 2), None);
    }

    #[test]
    fn impossible_messages_are_refused() {
        let mut hb = msg(MessageType::MsgHeartbeat);
        hb.commit = 1 << 40;
        assert_eq!(
            run(&hb, 10).err().map(|r| r.kind),
            Some("heartbeat past the log")
        );
        hb.commit = 10;
        assert!(run(&hb, 10).is_ok());

        let mut other = hb.clone();
        other.from = 99;
        assert_eq!(
            run(&other, 10).err().map(|r| r.kind),
            Some("unknown sender")
        );
        other.from = 2;
        other.to = 3;
        assert_eq!(
            run(&other, 10).err().map(|r| r.kind),
            Some("wrong recipient")
        );

        let mut app = msg(MessageType::MsgAppend);
        app.index = 10;
        app.log_term = 4;
        let e = |index, term| Entry {
            index,
            term,
            ..Default::default()
        };
        app.entries = vec![e(11, 5), e(13, 5)].into();
        assert_eq!(
            run(&app, 10).err().map(|r| r.kind),
            Some("non-consecutive append")
        );
        // Found by the raft_peer fuzz target (second session): entries or
        // a previous entry of term 0, messages other than a read request
        // without a term, a read request with one.
        app.entries = vec![e(11, 0)].into();
        assert_eq!(
            run(&app, 10).err().map(|r| r.kind),
            Some("entry without a term")
        );
        app.entries = vec![e(11, 5)].into();
        app.log_term = 0;
        assert_eq!(
            run(&app, 10).err().map(|r| r.kind),
            Some("entry without a term")
        );
        app.log_term = 4;
        let mut no_term = hb.clone();
        no_term.term = 0;
        assert_eq!(
            run(&no_term, 10).err().map(|r| r.kind),
            Some("message without a term")
        );
        let mut read = msg(MessageType::MsgReadIndex);
        read.entries = vec![Entry::default()].into();
        assert_eq!(
            run(&read, 10).err().map(|r| r.kind),
            Some("read request with a term")
        );
        read.term = 0;
        assert!(
            run(&read, 10).is_ok(),
            "a forwarded read request has no term"
        );
        app.entries = vec![e(11, 5), e(12, 5)].into();
        app.commit = 13;
        assert_eq!(
            run(&app, 10).err().map(|r| r.kind),
            Some("append commits past its entries")
        );
        app.commit = 12;
        assert!(run(&app, 10).is_ok());

        let hup = msg(MessageType::MsgHup);
        assert_eq!(
            run(&hup, 10).err().map(|r| r.kind),
            Some("local message type")
        );
        let prop = msg(MessageType::MsgPropose);
        assert!(run(&prop, 10).is_err());

        let mut snap = msg(MessageType::MsgSnapshot);
        snap.mut_snapshot().mut_metadata().index = MAX_SANE + 7;
        snap.mut_snapshot().mut_metadata().term = 5;
        snap.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        assert_eq!(run(&snap, 10).err().map(|r| r.kind), Some("bad snapshot"));
        snap.mut_snapshot().mut_metadata().index = 40;
        assert!(run(&snap, 10).is_ok());
        snap.mut_snapshot().mut_metadata().mut_conf_state().learners = vec![2];
        assert_eq!(run(&snap, 10).err().map(|r| r.kind), Some("bad snapshot"));
    }
}
