//! Exactly-once across failover: the last (request seq, result) per client.
//!
//! A client that did not hear back (timeout, failover) retries with the same
//! client id and request seq. The retry may reach a new primary after the
//! first attempt was already committed; the table below lets apply answer it
//! with the first result instead of applying it twice.
//!
//! The table is bounded and expired by *log time* only (the entries' stamped
//! times, made monotone by taking the maximum seen), and ties are broken by
//! client id, so every master keeps and evicts exactly the same sessions. It
//! is part of the state: in snapshots and in `freeze`.

use bytes::Bytes;
use imbl::{OrdMap, OrdSet};

/// How long a client's last result is kept after its last request, in log
/// milliseconds (10 minutes: far longer than a client retries across a
/// failover, `alluxio.user.rpc.retry.max.duration` is 2 min in Alluxio).
pub const DEFAULT_SESSION_RETENTION_MS: u64 = 10 * 60 * 1000;
/// Clients remembered at most; beyond it the least recently used (by log
/// time, then by client id) is forgotten.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// Longest client id accepted, in bytes (a UUID is 16).
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// One client's last applied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its request seq.
    pub last_seq: u64,
    /// Log time of the client's last request (the one applied, or a retry).
    pub last_ms: u64,
    /// The encoded `FsResult` it produced.
    pub result: Bytes,
}

/// What to do with an incoming request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New: apply it, then [`Sessions::record`] its result.
    Apply,
    /// A retry of the last applied request: answer with its first result.
    Duplicate(Bytes),
    /// Below the last applied request: refuse (its result is gone).
    Stale {
        /// The client's last applied seq.
        last_seq: u64,
    },
}

/// The session table plus an index by age for expiry and eviction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sessions {
    by_client: OrdMap<Bytes, Session>,
    // (last_ms, client id): the smallest is the least recently used; equal
    // times order by client id, so eviction is the same on every master.
    by_age: OrdSet<(u64, Bytes)>,
}

impl Sessions {
    /// Number of clients remembered.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// True when no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// The session of `client`, if remembered.
    pub fn get(&self, client: &[u8]) -> Option<&Session> {
        self.by_client.get(client)
    }

    /// Every session in ascending client id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Session)> {
        self.by_client.iter()
    }

    /// Forgets every session whose last request is older than `now_ms -
    /// retention_ms` (log time).
    pub fn expire(&mut self, now_ms: u64, retention_ms: u64) {
        let horizon = now_ms.saturating_sub(retention_ms);
        while let Some((ms, _)) = self.by_age.get_min() {
            if *ms >= horizon {
                break;
            }
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, client)) = self.by_age.remove_min() {
            self.by_client.remove(&client);
        }
    }

    /// Decides how to treat request `seq` of `client`; on a duplicate, the
    /// session's time is refreshed to `now_ms` (a retrying client is alive).
    pub fn check(&mut self, client: &Bytes, seq: u64, now_ms: u64) -> Verdict {
        let Some(session) = self.by_client.get(client) else {
            return Verdict::Apply;
        };
        match seq.cmp(&session.last_seq) {
            std::cmp::Ordering::Greater => Verdict::Apply,
            std::cmp::Ordering::Less => Verdict::Stale {
                last_seq: session.last_seq,
            },
            std::cmp::Ordering::Equal => {
                let result = session.result.clone();
                let last_seq = session.last_seq;
                self.put(client.clone(), last_seq, now_ms, result.clone());
                Verdict::Duplicate(result)
            }
        }
    }

    /// Remembers `result` as the answer to request `seq` of `client`. When
    /// a new client would exceed `max_sessions`, the least recently used
    /// ones are forgotten first (never the one being recorded).
    pub fn record(
        &mut self,
        client: Bytes,
        seq: u64,
        now_ms: u64,
        result: Bytes,
        max_sessions: usize,
    ) {
        if !self.by_client.contains_key(&client) {
            while self.by_client.len() >= max_sessions.max(1) {
                self.pop_oldest();
            }
        }
        self.put(client, seq, now_ms, result);
    }

    fn put(&mut self, client: Bytes, last_seq: u64, last_ms: u64, result: Bytes) {
        let session = Session {
            last_seq,
            last_ms,
            result,
        };
        match self.by_client.insert(client.clone(), session) {
            // The age index already holds (last_ms, client): entries of one
            // millisecond (common at high rates) leave it as it is.
            Some(old) if old.last_ms == last_ms => {}
            Some(old) => {
                self.by_age.remove(&(old.last_ms, client.clone()));
                self.by_age.insert((last_ms, client));
            }
            None => {
                self.by_age.insert((last_ms, client));
            }
        }
    }

    /// Inserts a session read from a snapshot (the caller checked that each
    /// client appears once).
    pub(crate) fn restore_one(&mut self, client: Bytes, session: Session) {
        self.put(client, session.last_seq, session.last_ms, session.result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn duplicate_stale_and_new() {
        let mut s = Sessions::default();
        assert_eq!(s.check(&id("a"), 5, 0), Verdict::Apply);
        s.record(id("a"), 5, 0, id("r5"), 10);
        assert_eq!(s.check(&id("a"), 5, 1), Verdict::Duplicate(id("r5")));
        assert_eq!(s.check(&id("a"), 4, 1), Verdict::Stale { last_seq: 5 });
        assert_eq!(s.check(&id("a"), 7, 1), Verdict::Apply);
        assert_eq!(s.get(b"a").map(|x| x.last_ms), Some(1), "retry refreshed");
    }

    #[test]
    fn expiry_and_lru_eviction_by_log_time_then_client_id() {
        let mut s = Sessions::default();
        s.record(id("c"), 1, 100, id("x"), 3);
        s.record(id("b"), 1, 100, id("x"), 3);
        s.record(id("a"), 1, 200, id("x"), 3);
        // Full: the oldest (time 100) with the smallest id ("b") goes first.
        s.record(id("d"), 1, 300, id("x"), 3);
        let left: Vec<&[u8]> = s.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(left, [&b"a"[..], b"c", b"d"]);
        // Re-recording an existing client never evicts.
        s.record(id("c"), 2, 300, id("y"), 3);
        assert_eq!(s.len(), 3);
        // Expiry keeps what is at or after now - retention.
        s.expire(1_250, 1_000);
        let left: Vec<&[u8]> = s.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(left, [&b"c"[..], b"d"]);
        s.expire(10_000, 1_000);
        assert!(s.is_empty());
    }
}
