//! journal-core's conformance suite on a single member and on a group of
//! three, over real raft-engine directories and gRPC on loopback.

mod common;

use common::{init_tracing, RaftFactory};
use journal_core::testkit::run_conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_single_member() {
    init_tracing();
    let factory = RaftFactory::new(1);
    tokio::time::timeout(
        std::time::Duration::from_secs(300),
        run_conformance(&factory),
    )
    .await
    .expect("the suite finishes in 5 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_three_members() {
    init_tracing();
    let factory = RaftFactory::new(3);
    tokio::time::timeout(
        std::time::Duration::from_secs(600),
        run_conformance(&factory),
    )
    .await
    .expect("the suite finishes in 10 minutes");
}
