//! The journal-core conformance suite on UFS + a real ZooKeeper.

mod common;

use common::{init_tracing, ZkFactory};
use journal_core::testkit::run_conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_ufs_with_zookeeper() {
    init_tracing();
    run_conformance(&ZkFactory::new()).await;
}
