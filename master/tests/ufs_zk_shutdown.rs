//! A UFS + ZooKeeper master shuts down (bounded) when ZooKeeper is not
//! there: never reached, or gone while this master was primary. Found by
//! the examples' attacker test: `shutdown` used to wait for the election to
//! withdraw the published address, which needs a ZooKeeper connection.

mod common;

use std::time::Duration;

use common::*;
use election_zk::testkit::{free_port, ZkServer};
use journal_core::{wait_for_primary, JournalSystem};

/// Well above the ZooKeeper connection timeout of the test config (5 s),
/// which bounds how long closing the election may take.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_when_zookeeper_was_never_reachable() {
    init_tracing();
    let folder = formatted_folder().await;
    let nobody = format!("127.0.0.1:{}", free_port());
    let m = Master::open(&url(&folder), 0, zk_config(&nobody, "/never")).await;
    // Let the election try (and fail) a few times.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!m.is_primary());
    tokio::time::timeout(SHUTDOWN_BOUND, m.journal.shutdown())
        .await
        .expect("shutdown returned while ZooKeeper is unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_shuts_down_after_zookeeper_went_away() {
    init_tracing();
    let mut zk = ZkServer::start();
    let folder = formatted_folder().await;
    let m = Master::open(&url(&folder), 0, zk_config(&zk.address(), "/gone")).await;
    wait_for_primary(&mut m.journal.role(), BOUND)
        .await
        .expect("primary");
    zk.stop();
    tokio::time::timeout(SHUTDOWN_BOUND, m.journal.shutdown())
        .await
        .expect("shutdown returned after ZooKeeper went away");
    assert!(!m.journal.role().borrow().is_primary());
}
