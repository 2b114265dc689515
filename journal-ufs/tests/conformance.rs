//! The journal-core conformance suite on the UFS journal, on a real local
//! folder with fsync and on the in-memory store.

mod common;

use common::{init_tracing, Storage, UfsFactory};
use journal_core::testkit::run_conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_local_files() {
    init_tracing();
    run_conformance(&UfsFactory::new(Storage::file())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_memory_store() {
    init_tracing();
    run_conformance(&UfsFactory::new(Storage::memory("conformance"))).await;
}
