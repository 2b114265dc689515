//! Two `UfsJournal`s on one real local folder that both believe they are
//! primary (the fight itself lives in `common::two_primaries`, shared with
//! the S3 tests).

mod common;

use std::time::Duration;

use common::{init_tracing, Storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_primaries_never_fork_the_log() {
    init_tracing();
    common::two_primaries::never_fork(&Storage::file(), 2500, Duration::ZERO).await;
}
