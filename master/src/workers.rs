//! The primary's worker registry: soft state, never journaled (as Alluxio's
//! block master keeps it). Workers register with their address, send full
//! block reports in heartbeats, and are declared LOST after
//! `alluxio.master.worker.timeout` without one. A new primary starts empty
//! and workers register again when their heartbeat is answered REGISTER.
//!
//! The registry performs no I/O and reads no clock: every call takes `now`,
//! so tests drive it through exact sequences without sleeping, and the RPC
//! layer passes `Instant::now()`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// A worker's liveness as the primary sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Heartbeats arrive within the timeout.
    Live,
    /// No heartbeat for longer than the timeout. The worker stays listed;
    /// its next heartbeat is answered REGISTER.
    Lost,
}

impl WorkerState {
    /// `LIVE` or `LOST`, as `MasterInfo.workers[].state` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Live => "LIVE",
            WorkerState::Lost => "LOST",
        }
    }
}

/// What the primary tells a worker in answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatCommand {
    /// Carry on.
    Nothing,
    /// This primary does not know the worker (never registered with it, or
    /// declared lost): register again.
    Register,
}

/// One registered worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    /// Id handed out at registration; valid with this primary only.
    pub id: u64,
    /// The worker's RPC address: its identity across re-registrations.
    pub address: String,
    /// Live or lost.
    pub state: WorkerState,
    /// When the last registration or heartbeat arrived.
    pub last_heard: Instant,
    /// Capacity reported at registration.
    pub capacity_bytes: u64,
    /// Used bytes from the latest report.
    pub used_bytes: u64,
    /// The blocks of the latest full report.
    pub blocks: HashSet<u64>,
}

/// The registry. Not thread-safe by itself; the RPC layer keeps it behind a
/// mutex (every operation is short and does no I/O).
///
/// Guarantees: one record per address (re-registration replaces the old
/// record and its id); ids are never reused while this registry lives, so a
/// heartbeat from an older registration is answered REGISTER; a worker is
/// LOST only after more than `timeout` without a registration or heartbeat,
/// and it turns LIVE again only by registering.
#[derive(Debug)]
pub struct WorkerRegistry {
    timeout: Duration,
    next_id: u64,
    by_id: BTreeMap<u64, WorkerRecord>,
    by_address: HashMap<String, u64>,
}

impl WorkerRegistry {
    /// An empty registry declaring workers lost after `timeout`
    /// (`alluxio.master.worker.timeout`).
    pub fn new(timeout: Duration) -> Self {
        WorkerRegistry {
            timeout,
            next_id: 1,
            by_id: BTreeMap::new(),
            by_address: HashMap::new(),
        }
    }

    /// The timeout this registry applies.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Registers the worker at `address` with a full block report and
    /// returns its new id. A record with the same address is replaced (its
    /// old id stops being known).
    pub fn register(
        &mut self,
        address: &str,
        capacity_bytes: u64,
        used_bytes: u64,
        blocks: impl IntoIterator<Item = u64>,
        now: Instant,
    ) -> u64 {
        if let Some(old) = self.by_address.remove(address) {
            self.by_id.remove(&old);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_address.insert(address.to_string(), id);
        self.by_id.insert(
            id,
            WorkerRecord {
                id,
                address: address.to_string(),
                state: WorkerState::Live,
                last_heard: now,
                capacity_bytes,
                used_bytes,
                blocks: blocks.into_iter().collect(),
            },
        );
        id
    }

    /// A heartbeat from worker `id` with its full block report. Unknown ids
    /// and LOST workers get [`HeartbeatCommand::Register`] and change
    /// nothing (a lost worker's blocks stay as last reported until it
    /// registers again with a fresh report).
    pub fn heartbeat(
        &mut self,
        id: u64,
        used_bytes: u64,
        blocks: impl IntoIterator<Item = u64>,
        now: Instant,
    ) -> HeartbeatCommand {
        match self.by_id.get_mut(&id) {
            Some(w) if w.state == WorkerState::Live => {
                w.last_heard = now;
                w.used_bytes = used_bytes;
                w.blocks = blocks.into_iter().collect();
                HeartbeatCommand::Nothing
            }
            _ => HeartbeatCommand::Register,
        }
    }

    /// Marks every LIVE worker not heard from for longer than the timeout as
    /// LOST and returns the addresses newly lost (for the log).
    pub fn sweep(&mut self, now: Instant) -> Vec<String> {
        let mut lost = Vec::new();
        for w in self.by_id.values_mut() {
            if w.state == WorkerState::Live
                && now.saturating_duration_since(w.last_heard) > self.timeout
            {
                w.state = WorkerState::Lost;
                lost.push(w.address.clone());
            }
        }
        lost
    }

    /// Forgets every worker (on losing primacy: the next primary starts
    /// empty and workers re-register with it). Ids keep growing.
    pub fn clear(&mut self) {
        self.by_id.clear();
        self.by_address.clear();
    }

    /// The worker registered under `id`.
    pub fn get(&self, id: u64) -> Option<&WorkerRecord> {
        self.by_id.get(&id)
    }

    /// Every known worker, LIVE and LOST, in id order.
    pub fn workers(&self) -> impl Iterator<Item = &WorkerRecord> {
        self.by_id.values()
    }

    /// Number of known workers (LIVE and LOST).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no worker is known.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Workers in `state`.
    pub fn count(&self, state: WorkerState) -> usize {
        self.by_id.values().filter(|w| w.state == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(500);

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn register_lists_the_worker_live_with_its_report() {
        let t0 = Instant::now();
        let mut r = WorkerRegistry::new(TIMEOUT);
        let id = r.register("w1:29999", 100, 10, [7, 8, 8], t0);
        let w = r.get(id).expect("registered");
        assert_eq!(w.address, "w1:29999");
        assert_eq!(w.state, WorkerState::Live);
        assert_eq!((w.capacity_bytes, w.used_bytes), (100, 10));
        assert_eq!(w.blocks, HashSet::from([7, 8]));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn re_registration_by_address_replaces_the_record_and_its_id() {
        let t0 = Instant::now();
        let mut r = WorkerRegistry::new(TIMEOUT);
        let old = r.register("w1:29999", 100, 10, [1], t0);
        let new = r.register("w1:29999", 200, 20, [2], at(t0, 10));
        assert_ne!(old, new);
        assert_eq!(r.len(), 1);
        assert!(r.get(old).is_none());
        assert_eq!(
            r.heartbeat(old, 0, [], at(t0, 20)),
            HeartbeatCommand::Register
        );
        assert_eq!(r.get(new).map(|w| w.capacity_bytes), Some(200));
    }

    #[test]
    fn heartbeat_updates_the_report_and_unknown_ids_must_register() {
        let t0 = Instant::now();
        let mut r = WorkerRegistry::new(TIMEOUT);
        let id = r.register("w1:29999", 100, 10, [1, 2], t0);
        assert_eq!(
            r.heartbeat(id, 30, [2, 3], at(t0, 100)),
            HeartbeatCommand::Nothing
        );
        let w = r.get(id).expect("known");
        assert_eq!(w.used_bytes, 30);
        assert_eq!(w.blocks, HashSet::from([2, 3]));
        assert_eq!(w.last_heard, at(t0, 100));
        assert_eq!(r.heartbeat(99, 0, [], t0), HeartbeatCommand::Register);
    }

    #[test]
    fn lost_after_the_timeout_without_heartbeat_and_live_again_after_registering() {
        let t0 = Instant::now();
        let mut r = WorkerRegistry::new(TIMEOUT);
        let a = r.register("a:1", 0, 0, [], t0);
        let b = r.register("b:1", 0, 0, [], t0);
        // Exactly the timeout is not yet lost.
        assert_eq!(
            r.heartbeat(b, 0, [], at(t0, 400)),
            HeartbeatCommand::Nothing
        );
        assert!(r.sweep(at(t0, 500)).is_empty());
        assert_eq!(r.sweep(at(t0, 501)), vec!["a:1".to_string()]);
        assert_eq!(r.get(a).map(|w| w.state), Some(WorkerState::Lost));
        assert_eq!(r.get(b).map(|w| w.state), Some(WorkerState::Live));
        // LOST workers stay listed; a second sweep reports nothing new.
        assert_eq!(r.len(), 2);
        assert!(r.sweep(at(t0, 600)).is_empty());
        // A lost worker's heartbeat is answered REGISTER and changes nothing.
        assert_eq!(
            r.heartbeat(a, 5, [9], at(t0, 700)),
            HeartbeatCommand::Register
        );
        assert_eq!(r.get(a).map(|w| w.state), Some(WorkerState::Lost));
        // After registering it is LIVE again, under a new id.
        let a2 = r.register("a:1", 0, 5, [9], at(t0, 710));
        assert_eq!(r.get(a2).map(|w| w.state), Some(WorkerState::Live));
        assert_eq!(r.count(WorkerState::Live), 2);
        assert_eq!(r.count(WorkerState::Lost), 0);
        assert_eq!(
            r.heartbeat(a2, 5, [9], at(t0, 720)),
            HeartbeatCommand::Nothing
        );
    }

    #[test]
    fn cleared_on_losing_primacy() {
        let t0 = Instant::now();
        let mut r = WorkerRegistry::new(TIMEOUT);
        let id = r.register("a:1", 0, 0, [1], t0);
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.heartbeat(id, 0, [], t0), HeartbeatCommand::Register);
        // Ids are not reused after a clear, so an old id never names a new worker.
        assert!(r.register("b:1", 0, 0, [], t0) > id);
    }
}
