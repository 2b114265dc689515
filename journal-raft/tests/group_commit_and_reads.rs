//! Group commit (many concurrent proposals share one append + fsync) and
//! ReadIndex barriers (only a primary passes one; state read after it holds
//! every write acknowledged before it).

mod common;

use std::time::Duration;

use common::{entry, init_tracing, Group};
use journal_core::{JournalError, JournalSystem};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_proposals_share_fsyncs_and_reads_are_fenced() {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(120), async {
        let mut g = Group::new(3);
        for i in 0..3 {
            g.open(i).await;
        }
        let p = g.primary(Duration::from_secs(30)).await;
        let leader = g.m(p).journal.clone();
        let before = leader.synced_writes();
        let n = 500;
        let futs = (0..n).map(|i| {
            let j = leader.clone();
            async move { j.propose(entry("gc", i, 64)).await }
        });
        for r in futures::future::join_all(futs).await {
            r.unwrap();
        }
        let syncs = leader.synced_writes() - before;
        eprintln!("group commit: {n} concurrent proposals, {syncs} fsynced writes on the leader");
        assert!(
            syncs < n as u64 / 2,
            "{syncs} fsyncs for {n} proposals: no group commit"
        );

        // A read barrier on the primary covers every acknowledged write.
        let out = leader.propose(entry("last", 0, 1)).await.unwrap();
        let seq = journal_core::testkit::TestMachine::output_seq(&out).unwrap();
        leader.read_barrier().await.unwrap();
        assert!(g.m(p).machine.read().entries.iter().any(|(s, _)| *s == seq));
        // Standbys refuse, naming the primary once they know it (a member
        // that started after the others bootstrapped learns the group from
        // the leader's first snapshot, so it may need a moment).
        for i in (0..3).filter(|i| *i != p) {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while g.m(i).journal.status().leader_address.is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "member {i} never learned the leader"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            match g.m(i).journal.read_barrier().await {
                Err(JournalError::NotPrimary { leader_hint }) => {
                    assert_eq!(leader_hint.as_deref(), Some(g.addresses[p].as_str()))
                }
                other => panic!("a standby passed a read barrier: {other:?}"),
            }
        }
        g.close_all().await;
    })
    .await
    .expect("test finishes in 2 minutes");
}
