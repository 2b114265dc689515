//! An election the test decides, for backends that take any `LeaderElection`.

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::election::{Contender, ElectionState, LeaderElection};
use crate::error::{JournalError, Result};

/// A `LeaderElection` whose outcome the test sets with [`ManualElection::set`].
///
/// Nothing keeps two `ManualElection`s from both saying `Leader`: that is the
/// point, it lets a test create two masters that both believe they are primary.
#[derive(Debug)]
pub struct ManualElection {
    state: watch::Sender<ElectionState>,
    address: Mutex<Option<String>>,
    serving: Mutex<Option<u64>>,
    resigned: Mutex<u32>,
    queue: Mutex<Option<Vec<Contender>>>,
}

impl Default for ManualElection {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualElection {
    /// A follower with no known leader.
    pub fn new() -> Self {
        ManualElection {
            state: watch::channel(ElectionState::Follower { leader: None }).0,
            address: Mutex::new(None),
            serving: Mutex::new(None),
            resigned: Mutex::new(0),
            queue: Mutex::new(None),
        }
    }

    /// Sets the state the journal sees.
    pub fn set(&self, state: ElectionState) {
        self.state.send_replace(state);
    }

    /// The epoch this contender announced it serves with, if it does.
    pub fn serving(&self) -> Option<u64> {
        *self.serving.lock()
    }

    /// How often the journal resigned (it was fenced, or handed primacy on).
    pub fn resignations(&self) -> u32 {
        *self.resigned.lock()
    }

    /// The queue `contenders()` reports from now on (`None`: `Unsupported`,
    /// as an election without a queue answers).
    pub fn set_contenders(&self, queue: Option<Vec<Contender>>) {
        *self.queue.lock() = queue;
    }
}

#[async_trait]
impl LeaderElection for ManualElection {
    async fn campaign(&self, address: &str) -> Result<()> {
        *self.address.lock() = Some(address.to_string());
        Ok(())
    }

    fn watch(&self) -> watch::Receiver<ElectionState> {
        self.state.subscribe()
    }

    async fn leader_address(&self) -> Result<Option<String>> {
        Ok(self.serving.lock().and(self.address.lock().clone()))
    }

    async fn announce_serving(&self, epoch: u64) -> Result<()> {
        *self.serving.lock() = Some(epoch);
        Ok(())
    }

    async fn withdraw_serving(&self) -> Result<()> {
        *self.serving.lock() = None;
        Ok(())
    }

    async fn resign(&self) -> Result<()> {
        *self.resigned.lock() += 1;
        *self.serving.lock() = None;
        self.state
            .send_replace(ElectionState::Follower { leader: None });
        Ok(())
    }

    async fn close(&self) {
        *self.serving.lock() = None;
        self.state.send_replace(ElectionState::Closed);
    }

    async fn contenders(&self) -> Result<Vec<Contender>> {
        self.queue.lock().clone().ok_or(JournalError::Unsupported {
            operation: "listing the election's contenders",
            backend: "manual election",
        })
    }
}
