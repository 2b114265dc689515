//! The leader's check that each peer link delivers.
//!
//! The transport can only see that a stream is open and that batches leave;
//! it cannot see that the peer receives them (the stream's single answer
//! comes at its end). A follower answers every heartbeat, so a leader that
//! has heard no answer from a member for a while, while sending it a
//! heartbeat every few ticks, knows its link to that member carries
//! nothing, whatever the transport believes. It then has the link reopened
//! (see the transport's `SILENT_PEER_LOG`). A member that is down costs one
//! attempt per bound: the sender ignores the request while it has no
//! stream, since then its own reconnecting is already under way.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use raft::eraftpb::MessageType;

/// How long a leader waits for any answer from a member before it has the
/// link reopened, at least: with the default timeouts that is 40
/// heartbeats, well past a pause of the member or a slow disk, and short
/// enough that a follower cut off by a stuck stream is back within seconds
/// instead of never. Longer election timeouts stretch it
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
    /// Since when this member leads; `None` while it does not.
    leading_since: Option<Instant>,
    /// The last answer from each member, or the last reopen asked for it.
    last: HashMap<u64, Instant>,
}

impl LinkWatch {
    /// A watch that asks for a reopen after `silence` without an answer.
    pub fn new(silence: Duration) -> LinkWatch {
        LinkWatch {
            silence,
            leading_since: None,
            last: HashMap::new(),
        }
    }

    /// This member became leader at `now`: every member gets a full bound
    /// from then on (answers to an earlier term's leader say nothing about
    /// the links of this one).
    pub fn lead(&mut self, now: Instant) {
        self.leading_since = Some(now);
        self.last.clear();
    }

    /// This member no longer leads.
    pub fn follow(&mut self) {
        self.leading_since = None;
        self.last.clear();
    }

    /// Records a message from `from` if it is an answer to the leader's
    /// heartbeats or appends (a member's own campaign messages travel on
    /// its link to the leader and say nothing about the leader's to it).
    pub fn heard(&mut self, from: u64, msg_type: MessageType, now: Instant) {
        if self.leading_since.is_some()
            && matches!(
                msg_type,
                MessageType::MsgHeartbeatResponse | MessageType::MsgAppendResponse
            )
        {
            self.last.insert(from, now);
        }
    }

    /// The members among `members` (this member's id excluded by the
    /// caller) that answered nothing for the bound; each is then given a
    /// fresh bound, so it is named at most once per bound.
    pub fn silent(&mut self, members: impl IntoIterator<Item = u64>, now: Instant) -> Vec<u64> {
        let Some(since) = self.leading_since else {
            return Vec::new();
        };
        let mut due = Vec::new();
        for id in members {
            let last = *self.last.get(&id).unwrap_or(&since);
            if now.saturating_duration_since(last) >= self.silence {
                self.last.insert(id, now);
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

    #[test]
    fn a_member_that_answers_is_never_named() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead(t0);
        for s in 1..60 {
            let now = t0 + Duration::from_secs(s);
            w.heard(2, MessageType::MsgHeartbeatResponse, now);
            assert!(w.silent([2], now).is_empty(), "named at {s} s");
        }
    }

    #[test]
    fn a_silent_member_is_named_once_per_bound() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead(t0);
        let mut named = Vec::new();
        for ms in (0..35_000).step_by(100) {
            let now = t0 + Duration::from_millis(ms);
            w.heard(3, MessageType::MsgAppendResponse, now);
            if !w.silent([2, 3], now).is_empty() {
                named.push(ms);
            }
        }
        assert_eq!(named, vec![10_000, 20_000, 30_000]);
    }

    /// Seed 10050: the cut-off follower's own pre-votes reached the leader
    /// the whole time. They must not count as answers.
    #[test]
    fn campaign_messages_are_not_answers() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        w.lead(t0);
        for s in 1..=10 {
            let now = t0 + Duration::from_secs(s);
            w.heard(2, MessageType::MsgRequestPreVote, now);
            w.heard(2, MessageType::MsgRequestVote, now);
        }
        assert_eq!(w.silent([2], t0 + S), vec![2]);
    }

    #[test]
    fn only_a_leader_names_members() {
        let t0 = Instant::now();
        let mut w = LinkWatch::new(S);
        assert!(w.silent([2], t0 + S * 3).is_empty());
        w.lead(t0);
        w.follow();
        w.heard(2, MessageType::MsgHeartbeatResponse, t0);
        assert!(w.silent([2], t0 + S * 3).is_empty());
        // A new term starts a new bound, whatever was heard before.
        let t1 = t0 + S * 4;
        w.lead(t1);
        assert!(w.silent([2], t1 + S / 2).is_empty());
        assert_eq!(w.silent([2], t1 + S), vec![2]);
    }
}
