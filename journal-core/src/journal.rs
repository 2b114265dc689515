//! The backend's side of the contract: a replicated, durable journal that
//! applies entries to the embedder's state machine.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use crate::error::{JournalError, Result};

/// What a master is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Replaying the journal; not serving writes or linearizable reads.
    Standby,
    /// Serving. Reported only after this master applied every entry committed
    /// before its election (catch-up before serve). `epoch` strictly grows
    /// from one primary to the next.
    Primary {
        /// The journal epoch of this primacy.
        epoch: u64,
    },
}

impl Role {
    /// True when serving as primary.
    pub fn is_primary(&self) -> bool {
        matches!(self, Role::Primary { .. })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Standby => write!(f, "STANDBY"),
            Role::Primary { epoch } => write!(f, "PRIMARY (epoch {epoch})"),
        }
    }
}

/// One member of the journal's group, as far as this master knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// Member id or address.
    pub id: String,
    /// RPC or peer address (the embedded journal: the peer address).
    pub address: String,
    /// The member's RPC address (`host:rpc_port`, where clients reach it),
    /// when the backend knows it and it differs in kind from `address`.
    pub rpc_address: Option<String>,
    /// `PRIMARY`, `STANDBY`, `VOTER`, `LEARNER`, ... as the backend names it.
    pub role: String,
    /// Last sequence number this member is known to have applied (if known).
    pub applied: Option<u64>,
}

/// A point-in-time view of a journal, for status pages and `quorum info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalStatus {
    /// Backend name (`UFS`, `EMBEDDED`).
    pub backend: &'static str,
    /// This master's role.
    pub role: Role,
    /// Highest epoch seen in the log.
    pub epoch: u64,
    /// Last sequence number applied to the state machine (0: none).
    pub last_applied: u64,
    /// Last sequence number known durable in the journal (0: none).
    pub last_durable: u64,
    /// Sequence number of the newest checkpoint/snapshot: the state before it.
    pub last_checkpoint: Option<u64>,
    /// Current primary's address, when known.
    pub leader_address: Option<String>,
    /// Group members, where the backend has a membership.
    pub members: Vec<MemberStatus>,
    /// Where the journal lives (folder URL, data directory).
    pub location: String,
}

/// A replicated journal driving a state machine.
///
/// Ordering: entries are applied on every master in the order the log holds
/// them. Durability: `propose` returns `Ok` only after the entry is durable
/// (UFS: its chunk exists in the store; Raft: committed by a quorum and
/// fsynced on each of them) **and** applied on this master. Failover: when this
/// master stops being primary, pending proposals fail with `NotPrimary` or
/// `Fenced` and the role watch flips to `Standby` before any further entry of
/// another primary is applied here.
#[async_trait]
pub trait JournalSystem: Send + Sync + 'static {
    /// Watch of this master's role; the current value is always up to date.
    fn role(&self) -> watch::Receiver<Role>;

    /// Appends `entry`, waits until it is durable and applied here, and
    /// returns the state machine's output. Primary only: otherwise
    /// `NotPrimary` with the leader's address when known.
    async fn propose(&self, entry: Bytes) -> Result<Bytes>;

    /// Returns once this master is provably still the primary and has applied
    /// everything committed before the call: state read after it is
    /// linearizable.
    async fn read_barrier(&self) -> Result<()>;

    /// Writes a checkpoint/snapshot of the applied state now; returns the
    /// sequence number it covers (the state before it).
    async fn checkpoint(&self) -> Result<u64>;

    /// A consistent view of the journal.
    fn status(&self) -> JournalStatus;

    /// The group's members as this master can list them now, in the
    /// backend's order (`quorum info`). The default is `status().members`
    /// (the embedded journal: the membership, with the leader's view of each
    /// member's progress); a journal elected through a queue lists the
    /// queue (the UFS journal with ZooKeeper: first the primary, then who
    /// takes over next, and so on).
    async fn members(&self) -> Result<Vec<MemberStatus>> {
        Ok(self.status().members)
    }

    /// Hands primacy to the named member (Raft `quorum elect`).
    async fn transfer_leadership(&self, to: &str) -> Result<()> {
        let _ = to;
        Err(JournalError::Unsupported {
            operation: "transfer_leadership",
            backend: self.status().backend,
        })
    }

    /// Adds a member to the group (it catches up before it votes).
    async fn add_member(&self, id: &str, address: &str) -> Result<()> {
        let _ = (id, address);
        Err(JournalError::Unsupported {
            operation: "add_member",
            backend: self.status().backend,
        })
    }

    /// Removes a member from the group.
    async fn remove_member(&self, id: &str) -> Result<()> {
        let _ = id;
        Err(JournalError::Unsupported {
            operation: "remove_member",
            backend: self.status().backend,
        })
    }

    /// Stops serving, leaves the election, and stops background work. Pending
    /// proposals fail with `Shutdown`. Idempotent.
    async fn shutdown(&self);
}

/// A proposal's payload and where its result goes; used by backends that
/// batch proposals (group commit).
#[derive(Debug)]
pub struct Proposal {
    /// The entry to append.
    pub entry: Bytes,
    /// Where the output (or the failure) is sent.
    pub reply: tokio::sync::oneshot::Sender<Result<Bytes>>,
    /// The proposal's slot in its journal's pending bound, freed when the
    /// proposal (answered or dropped) goes away.
    pub permit: Option<crate::admission::PendingPermit>,
}

/// Waits until `role` reports primary, or `timeout` passes.
///
/// Returns the epoch of that primacy. Since a journal reports primary only
/// after catching up, a proposal or read made after this returns sees every
/// entry committed before the election. Errors: `Timeout` when `timeout`
/// passes first, `Shutdown` when the journal behind `role` is gone.
pub async fn wait_for_primary(
    role: &mut watch::Receiver<Role>,
    timeout: std::time::Duration,
) -> Result<u64> {
    let fut = role.wait_for(|r| r.is_primary());
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(r)) => match *r {
            Role::Primary { epoch } => Ok(epoch),
            Role::Standby => Err(JournalError::Shutdown),
        },
        Ok(Err(_)) => Err(JournalError::Shutdown),
        Err(_) => Err(JournalError::Timeout {
            what: "this master to become primary".into(),
            after: timeout,
        }),
    }
}

/// Waits until one of several members reports primary, or `timeout` passes;
/// returns that member's position in `roles` and its epoch.
///
/// For a group of members in one process (tests, demos, a supervisor that
/// opened every member): pass each member's `role()` watch. When more than
/// one reports primary at the moment the wait ends (a deposed primary that
/// has not noticed yet), the one with the highest epoch is returned, since
/// it is the one the journal lets write. A member whose journal is gone is
/// skipped. Errors: `Timeout` when `timeout` passes first; `Shutdown` when
/// `roles` is empty or every member's journal is gone.
pub async fn wait_for_any_primary<I>(roles: I, timeout: std::time::Duration) -> Result<(usize, u64)>
where
    I: IntoIterator<Item = watch::Receiver<Role>>,
{
    let mut roles: Vec<watch::Receiver<Role>> = roles.into_iter().collect();
    let count = roles.len();
    let wait = async move {
        let mut gone = vec![false; roles.len()];
        loop {
            let mut best: Option<(usize, u64)> = None;
            for (i, role) in roles.iter_mut().enumerate() {
                // A journal that is gone keeps its last value, which may be a
                // primacy it no longer holds.
                if gone[i] || role.has_changed().is_err() {
                    gone[i] = true;
                    continue;
                }
                // Marks the value seen, so `changed` below waits for a new one.
                if let Role::Primary { epoch } = *role.borrow_and_update() {
                    if best.is_none_or(|(_, e)| epoch > e) {
                        best = Some((i, epoch));
                    }
                }
            }
            if let Some(found) = best {
                return Ok(found);
            }
            let changes: Vec<_> = roles
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| !gone[*i])
                .map(|(i, role)| Box::pin(async move { (i, role.changed().await.is_ok()) }))
                .collect();
            if changes.is_empty() {
                return Err(JournalError::Shutdown);
            }
            let ((i, alive), _, _) = futures::future::select_all(changes).await;
            if !alive {
                gone[i] = true;
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(found) => found,
        Err(_) => Err(JournalError::Timeout {
            what: format!("one of {count} members to become primary"),
            after: timeout,
        }),
    }
}
