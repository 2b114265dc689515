//! A scripted in-memory journal for the RPC layer's unit tests: its role,
//! leader and barrier behaviour are set by the test; proposals are applied
//! to the given state machine in order, and every call is counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use journal_core::{JournalError, JournalStatus, JournalSystem, Result, Role, SharedStateMachine};
use parking_lot::Mutex;
use tokio::sync::watch;

pub(crate) struct FakeJournal {
    role: watch::Sender<Role>,
    leader: Mutex<Option<String>>,
    machine: Mutex<Option<SharedStateMachine>>,
    seq: AtomicU64,
    proposals: AtomicU64,
    barrier_calls: AtomicU64,
    barriers_started: watch::Sender<u64>,
    hold: watch::Sender<bool>,
    fail: Mutex<Option<Option<String>>>,
}

impl FakeJournal {
    fn new(role: Role, leader: Option<&str>) -> Arc<Self> {
        Arc::new(FakeJournal {
            role: watch::channel(role).0,
            leader: Mutex::new(leader.map(str::to_string)),
            machine: Mutex::new(None),
            seq: AtomicU64::new(0),
            proposals: AtomicU64::new(0),
            barrier_calls: AtomicU64::new(0),
            barriers_started: watch::channel(0).0,
            hold: watch::channel(false).0,
            fail: Mutex::new(None),
        })
    }

    /// Primary at epoch 1, leading itself.
    pub(crate) fn primary() -> Arc<Self> {
        Self::new(Role::Primary { epoch: 1 }, Some("self:19998"))
    }

    /// A standby that knows `leader` (or no one).
    pub(crate) fn standby(leader: Option<&str>) -> Arc<Self> {
        Self::new(Role::Standby, leader)
    }

    pub(crate) fn set_machine(&self, machine: SharedStateMachine) {
        *self.machine.lock() = Some(machine);
    }

    pub(crate) fn set_role(&self, role: Role, leader: Option<&str>) {
        *self.leader.lock() = leader.map(str::to_string);
        self.role.send_replace(role);
    }

    pub(crate) fn hold_barriers(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    pub(crate) fn fail_barriers_with_leader(&self, hint: Option<&str>) {
        *self.fail.lock() = Some(hint.map(str::to_string));
    }

    pub(crate) fn set_barrier_ok(&self) {
        *self.fail.lock() = None;
    }

    pub(crate) async fn wait_barriers_started(&self, n: u64) {
        let mut rx = self.barriers_started.subscribe();
        let _ = rx.wait_for(|started| *started >= n).await;
    }

    pub(crate) fn barrier_calls(&self) -> u64 {
        self.barrier_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn proposals(&self) -> u64 {
        self.proposals.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl JournalSystem for FakeJournal {
    fn role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    async fn propose(&self, entry: Bytes) -> Result<Bytes> {
        if !self.role.borrow().is_primary() {
            return Err(JournalError::NotPrimary {
                leader_hint: self.leader.lock().clone(),
            });
        }
        self.proposals.fetch_add(1, Ordering::SeqCst);
        let machine = self.machine.lock().clone();
        let Some(machine) = machine else {
            return Err(JournalError::Shutdown);
        };
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let out = machine.write().apply(seq, &entry);
        Ok(out)
    }

    async fn read_barrier(&self) -> Result<()> {
        self.barrier_calls.fetch_add(1, Ordering::SeqCst);
        self.barriers_started.send_modify(|n| *n += 1);
        let mut hold = self.hold.subscribe();
        let _ = hold.wait_for(|held| !*held).await;
        if let Some(hint) = self.fail.lock().clone() {
            return Err(JournalError::NotPrimary { leader_hint: hint });
        }
        if !self.role.borrow().is_primary() {
            return Err(JournalError::NotPrimary {
                leader_hint: self.leader.lock().clone(),
            });
        }
        Ok(())
    }

    async fn checkpoint(&self) -> Result<u64> {
        Ok(self.seq.load(Ordering::SeqCst) + 1)
    }

    fn status(&self) -> JournalStatus {
        let role = *self.role.borrow();
        let seq = self.seq.load(Ordering::SeqCst);
        JournalStatus {
            backend: "FAKE",
            role,
            epoch: 1,
            last_applied: seq,
            last_durable: seq,
            last_checkpoint: None,
            leader_address: self.leader.lock().clone(),
            members: Vec::new(),
            location: "memory://fake".to_string(),
        }
    }

    async fn shutdown(&self) {
        self.role.send_replace(Role::Standby);
    }
}
