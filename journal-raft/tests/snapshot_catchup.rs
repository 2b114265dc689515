//! A member that falls behind by more than a snapshot period (the leader
//! compacted the entries it lacks) catches up through a snapshot streamed in
//! several chunks.

mod common;

use std::time::Duration;

use common::{entry, init_tracing, Group};
use journal_core::JournalSystem;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_member_catches_up_through_a_streamed_snapshot() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        let tuned = |g: &Group, i: usize| {
            let mut cfg = g.config(i);
            cfg.checkpoint_period_entries = 50;
            cfg.snapshot_chunk_size = 64 << 10;
            cfg
        };
        for i in 0..3 {
            let cfg = tuned(&g, i);
            g.open_with(i, cfg).await;
        }
        let p = g.primary(Duration::from_secs(30)).await;
        let lagging = (p + 1) % 3;
        // A little history the lagging member does have.
        for i in 0..10 {
            g.m(p)
                .journal
                .propose(entry("early", i, 100))
                .await
                .unwrap();
        }
        g.wait_applied(
            lagging,
            g.m(p).journal.status().last_applied,
            Duration::from_secs(30),
        )
        .await;
        g.close(lagging).await;

        // Far more than a snapshot period while it is down: ~600 KB of state.
        let futs = (0..400).map(|i| {
            let j = g.m(p).journal.clone();
            async move { j.propose(entry("while-down", i, 1500)).await }
        });
        for r in futures::future::join_all(futs).await {
            r.unwrap();
        }
        let j = g.m(p).journal.clone();
        journal_core::testkit::wait_until(
            "the leader's periodic snapshot",
            Duration::from_secs(30),
            || j.status().last_checkpoint.unwrap_or(0) > 60,
        )
        .await;
        let checkpoint = j.status().last_checkpoint.unwrap_or(0);
        assert!(checkpoint > 60, "leader snapshot covers {checkpoint}");

        let cfg = tuned(&g, lagging);
        g.open_with(lagging, cfg).await;
        let target = g.m(p).journal.status().last_applied;
        g.wait_applied(lagging, target, Duration::from_secs(60))
            .await;
        assert!(
            g.m(lagging).journal.snapshots_installed() >= 1,
            "the lagging member caught up without installing a snapshot"
        );
        assert_eq!(
            g.m(lagging).entries(),
            g.m(p).entries(),
            "states differ after catch-up"
        );
        // And it keeps following with ordinary appends afterwards.
        let out = g.m(p).journal.propose(entry("after", 0, 10)).await.unwrap();
        let seq = journal_core::testkit::TestMachine::output_seq(&out).unwrap();
        g.wait_applied(lagging, seq, Duration::from_secs(30)).await;
        assert_eq!(g.m(lagging).entries(), g.m(p).entries());
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}
