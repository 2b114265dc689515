//! The election of a one-master deployment: always the leader.

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::election::{ElectionState, LeaderElection};
use crate::error::Result;

/// The election for a deployment with exactly one master.
///
/// It is the leader as soon as it campaigns, with election epoch 1; the
/// journal derives the real epoch from the log (one more than the last epoch
/// written), so epochs still grow across restarts. If the journal reports that
/// another process fenced it, that means two masters were started on one
/// single-master journal: `resign` then leaves this master a standby for good
/// and logs why, instead of fighting over the log.
#[derive(Debug)]
pub struct SingleMaster {
    state: watch::Sender<ElectionState>,
    address: Mutex<Option<String>>,
    serving: Mutex<bool>,
}

impl Default for SingleMaster {
    fn default() -> Self {
        Self::new()
    }
}

impl SingleMaster {
    /// A single-master election that has not campaigned yet.
    pub fn new() -> Self {
        SingleMaster {
            state: watch::channel(ElectionState::Follower { leader: None }).0,
            address: Mutex::new(None),
            serving: Mutex::new(false),
        }
    }
}

#[async_trait]
impl LeaderElection for SingleMaster {
    async fn campaign(&self, address: &str) -> Result<()> {
        *self.address.lock() = Some(address.to_string());
        self.state.send_if_modified(|s| {
            if matches!(s, ElectionState::Follower { leader: None }) {
                *s = ElectionState::Leader { epoch: 1 };
                true
            } else {
                false
            }
        });
        Ok(())
    }

    fn watch(&self) -> watch::Receiver<ElectionState> {
        self.state.subscribe()
    }

    async fn leader_address(&self) -> Result<Option<String>> {
        Ok(if *self.serving.lock() {
            self.address.lock().clone()
        } else {
            None
        })
    }

    async fn announce_serving(&self, _epoch: u64) -> Result<()> {
        *self.serving.lock() = true;
        Ok(())
    }

    async fn withdraw_serving(&self) -> Result<()> {
        *self.serving.lock() = false;
        Ok(())
    }

    async fn resign(&self) -> Result<()> {
        tracing::error!(
            "another master wrote to this single-master journal and fenced this one; \
             a single-master deployment must run exactly one master per journal folder. \
             This master stays a standby: stop the other one, then restart this one"
        );
        *self.serving.lock() = false;
        // A leader hint that is not `None` also keeps `campaign` from re-electing.
        self.state.send_replace(ElectionState::Follower {
            leader: Some("<another master fenced this single master>".into()),
        });
        Ok(())
    }

    async fn close(&self) {
        *self.serving.lock() = false;
        self.state.send_replace(ElectionState::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leads_after_campaign_and_stays_down_after_resign() {
        let e = SingleMaster::new();
        assert_eq!(
            *e.watch().borrow(),
            ElectionState::Follower { leader: None }
        );
        e.campaign("m1:19998").await.unwrap();
        assert_eq!(*e.watch().borrow(), ElectionState::Leader { epoch: 1 });
        assert_eq!(e.leader_address().await.unwrap(), None);
        e.announce_serving(1).await.unwrap();
        assert_eq!(
            e.leader_address().await.unwrap().as_deref(),
            Some("m1:19998")
        );
        e.resign().await.unwrap();
        e.campaign("m1:19998").await.unwrap();
        assert!(e.watch().borrow().leader_epoch().is_none());
        e.close().await;
        assert_eq!(*e.watch().borrow(), ElectionState::Closed);
    }
}
