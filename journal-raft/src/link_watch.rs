//! The leader's check that each peer link delivers.
//!
//! The transport can only see that a stream is open and that batches leave;
//! it cannot see that the peer receives them (the stream's single answer
//! comes at its end). A follower answers every heartbeat (a founder that
//! has not bootstrapped yet answers only appends), so a leader that has
//! heard no answer from a member for a while, while sending it a heartbeat
//! every few ticks, knows that one of the two links between them carries
//! nothing, whatever the transport believes. It then has its own link to
//! the member reopened (see the transport's `SILENT_PEER_LOG`). A member
//! that is down costs one request per bound: the sender ignores it while
//! it has no stream (its own reconnecting is then under way) or a stream
//! younger than half the bound.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use raft::eraftpb::MessageType;

/// How long a leader waits for any answer from a member before it has the
/// link reopened, at least: with the default timeouts that is 50
/// heartbeats (one every 200 ms), well past a pause of the member or a
/// slow disk, and short enough that a follower cut off by a stuck stream
/// is back within seconds instead of never. Longer election timeouts stretch it
/// ([`silence_for`]).
pub(crate) const SILENCE: Duration = Duration::from_secs(10);

/// The bound for a given maximum election timeout: five of them, and at
/// least [`SILENCE`].
pub(crate) fn silence_for(election_timeout_max: Duration) -> Duration {
    (election_timeout_max * 5).max(SILENCE)
}

/// Per-peer time of the last answer while this member leads.
pub(crate) struct LinkWatch {
    silence: Duration,
    /// Whether this member leads.
    leading: bool,
    /// The last answer from each member, the last reopen asked for it, or
    /// when the watch first saw it.
    last: HashMap<u64, Instant>,
    /// When `silent` last ran: a longer gap means this member itself was
    /// stalled, and its members' silence over the gap says nothing.
    checked: Option<Instant>,
}

impl LinkWatch {
    /// A watch that asks for a reopen after `silence` without an answer.
    pub fn new(silence: Duration) -> LinkWatch {
        LinkWatch {
            silence,
            leading: false,
            last: HashMap::new(),
            checked: None,
        }
    }

    /// The silence bound.
    pub fn bound(&self) -> Duration {
        self.silence
    }

    /// This member became leader: every member gets a full bound from the
    /// next check on (answers to an earlier term's leader say nothing
    /// about the links of this one).
    pub fn lead(&mut self) {
        self.leading = true;
        self.last.clear();
        self.checked = None;
    }

    /// This member no longer leads.
    pub fn follow(&mut self) {
        self.leading = false;
        self.last.clear();
    }

    /// Records a message from `from` if it is an answer to the leader's
    /// heartbeats or appends (a member's own campaign messages travel on
    /// its link to the leader and say nothing about the leader's to it).
    pub fn heard(&mut self, from: u64, msg_type: MessageType, now: Instant) {
        if self.leading
            && matches!(
                msg_type,
                MessageType::MsgHeartbeatResponse | MessageType::MsgAppendResponse
            )
        {
            self.last.insert(from, now);
        }
    }

    /// The members among `members` (this member's id excluded by the
    /// caller; the leader's current progress set) that answered nothing
    /// for the bound; each is then given a fresh bound, so it is named at
    /// most once per bound. A member first seen here (added while this
    /// member leads) gets a full bound from now. Called every tick: after
    /// a gap of more than a quarter of the bound (this member's own driver
    /// was stalled: a long fsync, a paused process), every member gets a
    /// fresh bound instead, since their answers may sit unread in the
    /// queue.
    pub fn silent(&mut self, members: impl IntoIterator<Item = u64>, now: Instant) -> Vec<u64> {
        if !self.leading {
            return Vec::new();
        }
        let stalled = self
            .checked
            .is_some_and(|c| now.saturating_duration_since(c) > self.silence / 4);
        self.checked = Some(now);
        let members: Vec<u64> = members.into_iter().collect();
        self.last.retain(|id, _| members.contains(id));
        let mut due = Vec::new();
        for id in members {
            let last = self.last.entry(id).or_insert(now);
            if stalled {
                *last = now;
            } else if now.saturating_duration_since(*last) >= self.silence {
                *last = now;
                due.push(id);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(10);
    const TICK: Duration = Duration::from_millis(100);

    /// Checks every tick from `from` up to `to` (excluded), after letting
    /// `answer` record what arrived in that tick; returns the members
    /// named, with the time since `from`.
    fn run(
        w: &mut LinkWatch,
        members: &[u64],
        from: Instant,
        to: Duration,
        mut answer: impl FnMut(&mut LinkWatch, Instant),
    ) -> Vec<(Duration, u64)> {
        let mut named = Vec::new();
        let mut at = Duration::ZERO;
        while at < to {
            let now = from + at;
            answer(w, now);
            for id in w.silent(members.iter().copied(), now) {
                named.push((at, id));
            }
            at += TICK;
        }
        named
    }

    /// An `answer` for [`run`]: each of `ids` answers a heartbeat every tick.
    fn answering(ids: &[u64]) -> impl FnMut(&mut LinkWatch, Instant) + '_ {
        move |w, now| {
            for id in ids {
                w.heard(*id, MessageType::MsgHeartbeatResponse, now);
            }
        }
    }

    #[test]
    fn a_member_that_answers_is_never_named() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead();
        let named = run(&mut w, &[2], t0, S * 6, answering(&[2]));
        assert!(named.is_empty(), "{named:?}");
    }

    #[test]
    fn a_silent_member_is_named_once_per_bound() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead();
        let named = run(
            &mut w,
            &[2, 3],
            t0,
            Duration::from_millis(35_000),
            |w, now| w.heard(3, MessageType::MsgAppendResponse, now),
        );
        assert_eq!(named, vec![(S, 2), (S * 2, 2), (S * 3, 2)]);
    }

    /// Seed 10050: the cut-off follower's own pre-votes reached the leader
    /// the whole time. They must not count as answers.
    #[test]
    fn campaign_messages_are_not_answers() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead();
        let named = run(&mut w, &[2], t0, S + TICK, |w, now| {
            w.heard(2, MessageType::MsgRequestPreVote, now);
            w.heard(2, MessageType::MsgRequestVote, now);
        });
        assert_eq!(named, vec![(S, 2)]);
    }

    #[test]
    fn only_a_leader_names_members() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        assert!(run(&mut w, &[2], t0, S * 2, |_, _| {}).is_empty());
        w.lead();
        w.follow();
        assert!(run(&mut w, &[2], t0 + S * 2, S * 2, |_, _| {}).is_empty());
        // A new term starts a new bound, whatever was heard before.
        w.lead();
        let named = run(&mut w, &[2], t0 + S * 4, S + TICK, |_, _| {});
        assert_eq!(named, vec![(S, 2)]);
    }

    /// A member added after the leader has led for longer than the bound
    /// gets a full bound of its own (its sender has only just started).
    #[test]
    fn a_member_added_while_leading_gets_a_full_bound() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead();
        assert!(run(&mut w, &[2], t0, S * 3, answering(&[2])).is_empty());
        let t1 = t0 + S * 3;
        let named = run(&mut w, &[2, 4], t1, S + TICK, answering(&[2]));
        assert_eq!(named, vec![(S, 4)]);
    }

    /// A leader whose own driver stood still (a long fsync, a paused
    /// process) cannot tell silent members from answers it has not read
    /// yet: every member gets a fresh bound.
    #[test]
    fn a_stalled_leader_names_no_one() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead();
        assert!(w.silent([2, 3], t0).is_empty());
        answering(&[2, 3])(&mut w, t0);
        // Nothing checked for 15 s, then ticks resume with answers.
        let t1 = t0 + Duration::from_secs(15);
        let named = run(&mut w, &[2, 3], t1, S, answering(&[2, 3]));
        assert!(named.is_empty(), "{named:?}");
        // Without answers after the stall, the bound runs from its end.
        let t2 = t1 + S + Duration::from_secs(5);
        let named = run(&mut w, &[2], t2, S + TICK, |_, _| {});
        assert_eq!(named, vec![(S, 2)]);
    }
}
