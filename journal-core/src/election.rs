//! Leader election: who may be primary, with a growing epoch, and where the
//! primary can be reached.

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::{JournalError, Result};

/// This contender's standing in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionState {
    /// Not (yet) elected. `leader` is the elected contender's address when known.
    Follower {
        /// Address of the current leader, when known.
        leader: Option<String>,
    },
    /// Elected with `epoch`; epochs handed out by one election only grow.
    Leader {
        /// The election epoch (ZooKeeper: the winning node's sequence number).
        epoch: u64,
    },
    /// Leadership is in doubt (e.g. ZooKeeper connection lost under the
    /// SESSION policy): do not serve, but do not give up the claim either.
    Suspended {
        /// The epoch held before suspension.
        epoch: u64,
    },
    /// The election was left for good (shutdown).
    Closed,
}

impl ElectionState {
    /// The epoch when this contender is the serving leader.
    pub fn leader_epoch(&self) -> Option<u64> {
        match self {
            ElectionState::Leader { epoch } => Some(*epoch),
            _ => None,
        }
    }
}

/// One contender of an election, as its queue lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contender {
    /// The contender's entry in the election (ZooKeeper: its node name).
    pub id: String,
    /// The address it campaigns with (its RPC address).
    pub address: String,
    /// True for the contender that asked (this master).
    pub own: bool,
}

/// A leader election among masters.
///
/// Guarantees: at most one contender sees `Leader` for a given epoch; epochs
/// grow with each new leader; a contender that may have lost leadership
/// (session expired, connection lost) leaves `Leader` in its watch before
/// another contender can be told it won, as far as the election service
/// allows. Journals must still fence themselves (the UFS journal's file-naming
/// exclusion, Raft's terms): an election is advice, the log is the authority.
#[async_trait]
pub trait LeaderElection: Send + Sync + 'static {
    /// Joins the election, advertising `address` (this master's RPC address).
    /// Returns once the candidacy is registered; the outcome arrives on `watch`.
    async fn campaign(&self, address: &str) -> Result<()>;

    /// Watch of this contender's state.
    fn watch(&self) -> watch::Receiver<ElectionState>;

    /// The address of the current serving primary, if any is published.
    async fn leader_address(&self) -> Result<Option<String>>;

    /// Publishes that this contender now serves as primary at its address
    /// (ZooKeeper: the ephemeral leader node). Called by the journal after
    /// catch-up and its claim.
    async fn announce_serving(&self, epoch: u64) -> Result<()>;

    /// Withdraws the published address (this master stopped serving).
    async fn withdraw_serving(&self) -> Result<()>;

    /// Gives up leadership: the journal fenced this master, or it hands
    /// primacy to the next contender in line. The contender stays in the
    /// election as a follower where the backend can (ZooKeeper: a new node
    /// at the back of the queue).
    async fn resign(&self) -> Result<()>;

    /// Leaves the election for good, withdrawing the published address if
    /// any. Must return in bounded time even when the coordination service
    /// is unreachable (journals call it on shutdown without withdrawing
    /// first); an address that cannot be removed goes with the session.
    async fn close(&self);

    /// The contenders in the order the election would elect them: the
    /// first one leads (or is about to), the second takes over when it
    /// leaves or resigns, and so on. Backends without a queue answer
    /// `Unsupported`.
    async fn contenders(&self) -> Result<Vec<Contender>> {
        Err(JournalError::Unsupported {
            operation: "listing the election's contenders",
            backend: "election",
        })
    }
}
