//! Expiring a contender's session from outside, as a network or server
//! fault would.

use std::time::{Duration, Instant};

use zookeeper_client as zk;

use crate::ZkElection;

/// Expires `victim`'s session from outside: another client attaches to the
/// same session id and password and closes it. Against a single server the
/// victim can win the session back before the close lands, so this repeats
/// until the victim runs on a new session (30 s at most, then it panics).
pub async fn expire_session(address: &str, victim: &ZkElection) {
    let Some(info) = victim.session() else {
        panic!("the victim has no ZooKeeper session");
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(killer) = zk::Client::connector()
            .with_session(info.clone())
            .with_fail_eagerly()
            .connect(address)
            .await
        {
            let mut w = killer.state_watcher();
            drop(killer);
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                while w.changed().await != zk::SessionState::Closed {}
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if victim
            .session()
            .map(|s| s.id() != info.id())
            .unwrap_or(true)
        {
            return;
        }
        if Instant::now() > deadline {
            panic!("could not expire the ZooKeeper session from outside within 30 s");
        }
    }
}
